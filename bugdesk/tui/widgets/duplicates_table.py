"""Provides the list of a group's duplicates in the detail view (Enter opens one, S splits it out)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from bugdesk.tui.format import STATUS_SHORT, age, when
from bugdesk.tui.store import ReportRow


class DuplicatesTable(DataTable):
    """Duplicates of the group's canonical report, newest first."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_shown: list[ReportRow] = []

    def on_mount(self) -> None:
        self.add_column("#", key="number")
        self.add_column("created", key="created")
        self.add_column("age", key="age")
        self.add_column("status", key="status")
        self.add_column("title", key="title")

    def show(self, rows: list[ReportRow], now: datetime) -> None:
        """Show ``rows``, keeping the cursor on the same report when it is still there."""
        current = self.current_row
        self.clear()
        for row in rows:
            self.add_row(
                Text(f"#{row.number}", style="bold"),
                when(row.created_at),
                age(row.created_at, now),
                STATUS_SHORT.get(row.status, row.status),
                row.title,
                key=str(row.number),
            )
        self.rows_shown = list(rows)
        self.display = bool(rows)
        numbers = [r.number for r in rows]
        if current is not None and current.number in numbers:
            self.move_cursor(row=numbers.index(current.number), animate=False, scroll=False)

    @property
    def current_row(self) -> ReportRow | None:
        """The highlighted duplicate, if any."""
        if not self.rows_shown or not 0 <= self.cursor_row < len(self.rows_shown):
            return None
        return self.rows_shown[self.cursor_row]
