"""Provides the line under the header: the active filters and sort, and the search box when searching."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Static

from bugdesk.tui.store import SORTS, ListQuery


class SearchInput(Input):
    """The search box: Enter applies, Escape gives up."""

    BINDINGS = [Binding("escape", "cancel", "Cancel search", show=False)]

    @dataclass
    class Cancelled(Message):
        """The search box was left without searching."""

    def action_cancel(self) -> None:
        self.post_message(self.Cancelled())


class FilterBar(Horizontal):
    """Shows what the list is filtered and sorted by, and how much is loaded; hosts the search box."""

    @dataclass
    class SearchSubmitted(Message):
        """Search for ``text`` (empty: no search)."""

        text: str

    def compose(self) -> ComposeResult:
        yield Static(id="filter-label")
        yield SearchInput(placeholder="search titles and descriptions; Enter to apply, Esc to cancel", id="search")

    def on_mount(self) -> None:
        self.query_one(SearchInput).display = False

    def show(self, query: ListQuery, loaded: int, more: bool, loading: bool) -> None:
        """Describe ``query`` and the rows loaded so far."""
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" filter ", style="dim")
        text.append("  ".join(query.labels()), style="bold")
        text.append("  sort ", style="dim")
        text.append(SORTS.get(query.sort, query.sort), style="bold")
        if loading:
            text.append("  loading…", style="italic")
        else:
            text.append(f"  {loaded:,}{'+' if more else ''} shown", style="dim")
        # One fixed line: no relayout of the screen needed (that costs more than the query at 1M rows).
        self.query_one("#filter-label", Static).update(text, layout=False)

    def start_search(self, current: str | None) -> None:
        """Open the search box, prefilled with the current search."""
        box = self.query_one(SearchInput)
        box.value = current or ""
        box.display = True
        self.query_one("#filter-label").display = False
        box.focus()

    def _close(self) -> None:
        self.query_one(SearchInput).display = False
        self.query_one("#filter-label").display = True

    @on(Input.Submitted, "#search")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._close()
        self.post_message(self.SearchSubmitted(event.value.strip()))

    @on(SearchInput.Cancelled)
    def _cancelled(self) -> None:
        # Not stopped: the screen hands focus back to the list.
        self._close()
