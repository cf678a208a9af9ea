"""Provides the report list: a virtual-scrolling line widget fed page by page, that keeps its place on refresh.

Why not a DataTable: its line cache is keyed on the cursor position, so every cursor move
re-renders every visible cell. Here each row is rendered once into a cached Strip (keyed on
the row's values, its width and whether the cursor is on it), so a cursor move re-renders two
lines and scrolling re-uses what was drawn before. The widget only holds the rows paged in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from bugdesk.tui.format import SEVERITY_SHORT, SEVERITY_STYLE, STATUS_SHORT, age, sla_left
from bugdesk.tui.store import ReportRow

COLUMNS: tuple[tuple[str, str, int, bool], ...] = (
    ("severity", "sev", 4, False),
    ("number", "#", 7, True),
    ("title", "title", 0, False),
    ("status", "status", 8, False),
    ("age", "age", 4, True),
    ("sla", "SLA", 8, True),
    ("occurrences", "occ", 5, True),
    ("claimed_by", "claimed", 9, False),
)
"""(key, label, width, right-aligned); the title takes what is left. Each cell carries a one-space gap."""

SORT_BY_COLUMN = {"number": "-number", "age": "-created_at", "sla": "sla_due_at"}
"""Clicking these headers sorts by them (clicking again reverses the direction)."""

NEAR_END = 20
"""Ask for the next page when the cursor or the view comes this close to the last loaded row."""

MIN_TITLE = 12
"""The title column never gets narrower than this."""


class ReportList(ScrollView, can_focus=True):
    """The report list. Rows are ``ReportRow``s in display order; the first line is the column header."""

    COMPONENT_CLASSES = {"report-list--header", "report-list--cursor", "report-list--odd"}
    """Header, cursor row (focused or not, see the stylesheet) and every other row."""

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first_row", "First", show=False),
        Binding("end,G", "last_row", "Last loaded", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    @dataclass
    class Highlighted(Message):
        """The cursor moved to ``row``."""

        row: ReportRow | None

    @dataclass
    class Selected(Message):
        """Enter (or a click on the highlighted row) on ``row``."""

        row: ReportRow

    @dataclass
    class NearEnd(Message):
        """The cursor or the view came close to the last loaded row: time for the next page."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ReportList.NearEnd)

    @dataclass
    class SortRequested(Message):
        """A sortable column header was clicked."""

        sort: str

    def __init__(self, *, now: Callable[[], datetime], id: str | None = None) -> None:
        super().__init__(id=id)
        self._now = now
        self.rows_shown: list[ReportRow] = []
        """The rows in the list, in order."""
        self.cursor_row = 0
        """Index of the highlighted row."""
        self._title_width = MIN_TITLE
        self._strips: LRUCache[tuple, Strip] = LRUCache(2000)
        self.empty_text = ""
        """Shown on the first line when there are no rows (set once a query has answered)."""

    def on_mount(self) -> None:
        # Ages and SLA countdowns move on even when nothing in the database does.
        self.set_interval(30, self.refresh)

    # -- layout --------------------------------------------------------------------------------

    def on_resize(self, event: events.Resize) -> None:
        fixed = sum(width + 1 for _, _, width, _ in COLUMNS if width)
        # One column for the scrollbar, one for the title's own gap.
        self._title_width = max(MIN_TITLE, event.size.width - fixed - 2)
        self._update_virtual_size()
        # Rows can arrive before the first layout; only now is it known how many fit.
        self._check_near_end()

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.rows_shown) + 1)

    @property
    def _page_rows(self) -> int:
        return max(1, self.size.height - 1)

    def _widths(self) -> list[int]:
        return [width or self._title_width for _, _, width, _ in COLUMNS]

    # -- rendering -----------------------------------------------------------------------------

    def _cells(self, row: ReportRow, now: datetime) -> Text:
        sla, breached = sla_left(row.sla_due_at, now, is_open=row.is_open)
        title = ("↳ " if row.is_duplicate else "") + ("⚑ " if row.needs_human else "") + row.title
        values = (
            (SEVERITY_SHORT.get(row.severity, row.severity), SEVERITY_STYLE.get(row.severity, "")),
            (f"#{row.number}", "bold"),
            (title, "bold" if breached else ""),
            (STATUS_SHORT.get(row.status, row.status), "" if row.is_open else "dim"),
            (age(row.created_at, now), ""),
            (sla, "bold white on dark_red" if breached else ""),
            ("" if row.is_duplicate else str(row.occurrences), ""),
            (row.claimed_by or "", "magenta"),
        )
        text = Text(no_wrap=True)
        for (_, _, _, right), width, (value, style) in zip(COLUMNS, self._widths(), values, strict=True):
            if len(value) > width:
                value = value[: width - 1] + "…"
            text.append(value.rjust(width) if right else value.ljust(width), style=style)
            text.append(" ")
        return text

    def _strip(self, text: Text, style: Style, width: int) -> Strip:
        segments = list(text.render(self.app.console))
        return Strip(segments).extend_cell_length(width).crop(0, width).apply_style(style)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            key = ("header", width, self._title_width)
            if key not in self._strips:
                header = Text(no_wrap=True)
                for (_, label, _, right), w in zip(COLUMNS, self._widths(), strict=True):
                    header.append((label.rjust(w) if right else label.ljust(w)) + " ")
                self._strips[key] = self._strip(header, self.get_component_rich_style("report-list--header"), width)
            return self._strips[key]
        index = int(self.scroll_y) + y - 1
        if index >= len(self.rows_shown):
            if index == 0 and self.empty_text:
                return self._strip(Text(" " + self.empty_text, style="italic"), self.rich_style, width)
            return Strip([Segment(" " * width, self.rich_style)])
        row = self.rows_shown[index]
        now = self._now()
        is_cursor = index == self.cursor_row
        # The minute is part of the key: ages and countdowns move on, everything else only when the row does.
        key = (row, width, self._title_width, is_cursor, is_cursor and self.has_focus, index % 2, now.timetuple()[:5])
        strip = self._strips.get(key)
        if strip is None:
            style = self.rich_style
            if index % 2:
                style += self.get_component_rich_style("report-list--odd")
            if is_cursor:
                style += self.get_component_rich_style("report-list--cursor")
            strip = self._strips[key] = self._strip(self._cells(row, now), style, width)
        return strip

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- rows ----------------------------------------------------------------------------------

    def set_rows(self, rows: list[ReportRow], mode: str) -> None:
        """Show ``rows``: ``replace`` starts over, ``append`` adds a page, ``refresh`` keeps the place."""
        if mode == "append":
            known = {r.number for r in self.rows_shown}
            # A refresh may already have pulled some of them in.
            self.rows_shown.extend(r for r in rows if r.number not in known)
        elif mode == "refresh":
            selected = self.current_row
            self.rows_shown = list(rows)
            numbers = [r.number for r in rows]
            if selected is not None and selected.number in numbers:
                self.cursor_row = numbers.index(selected.number)
            self.cursor_row = min(self.cursor_row, max(0, len(rows) - 1))
        else:
            self.rows_shown = list(rows)
            self.cursor_row = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        # Scroll position is left alone on append and refresh: the view stays where the reader is.
        self._update_virtual_size()
        self.refresh()
        if mode != "append":
            self.post_message(self.Highlighted(self.current_row))

    def update_row(self, row: ReportRow) -> None:
        """Replace one row in place (after an action on it), if it is shown."""
        for i, old in enumerate(self.rows_shown):
            if old.number == row.number:
                self.rows_shown[i] = row
                self.refresh()
                return

    @property
    def current_row(self) -> ReportRow | None:
        """The highlighted report, if any."""
        if not 0 <= self.cursor_row < len(self.rows_shown):
            return None
        return self.rows_shown[self.cursor_row]

    # -- the cursor ----------------------------------------------------------------------------

    def move_cursor(self, row: int, *, scroll: bool = True) -> None:
        """Highlight row ``row`` (clamped) and, with ``scroll``, bring it into view."""
        row = max(0, min(row, len(self.rows_shown) - 1))
        if row != self.cursor_row:
            self.cursor_row = row
            self.refresh()
            self.post_message(self.Highlighted(self.current_row))
        if scroll:
            top = int(self.scroll_y)
            if row < top:
                self.scroll_to(y=row, animate=False, immediate=True)
            elif row >= top + self._page_rows:
                self.scroll_to(y=row - self._page_rows + 1, animate=False, immediate=True)
        self._check_near_end()

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self._page_rows)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self._page_rows)

    def action_first_row(self) -> None:
        self.move_cursor(0)

    def action_last_row(self) -> None:
        # The last loaded row; getting there asks for the next page, so End again goes further.
        self.move_cursor(len(self.rows_shown) - 1)

    def action_select(self) -> None:
        if self.current_row is not None:
            self.post_message(self.Selected(self.current_row))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            self._header_clicked(event.x)
            return
        index = int(self.scroll_y) + event.y - 1
        if not 0 <= index < len(self.rows_shown):
            return
        if index == self.cursor_row or event.chain > 1:
            self.move_cursor(index)
            self.action_select()
        else:
            self.move_cursor(index)

    def _header_clicked(self, x: int) -> None:
        left = 0
        for (key, _, _, _), width in zip(COLUMNS, self._widths(), strict=True):
            if left <= x < left + width + 1:
                if key in SORT_BY_COLUMN:
                    self.post_message(self.SortRequested(SORT_BY_COLUMN[key]))
                return
            left += width + 1

    # -- paging --------------------------------------------------------------------------------

    def near_end(self) -> bool:
        """Whether the cursor or the bottom of the view is within ``NEAR_END`` rows of the last loaded row."""
        if not self.rows_shown:
            return False
        last_visible = int(self.scroll_y) + self._page_rows
        return max(self.cursor_row, last_visible) >= len(self.rows_shown) - NEAR_END

    def _check_near_end(self) -> None:
        if self.near_end():
            self.post_message(self.NearEnd())

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._check_near_end()
