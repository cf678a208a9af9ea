"""Provides the dashboard's main screen: live counts, the filter line, the paged report list and the footer."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

from bugdesk.tui.dialogs import FilterDialog
from bugdesk.tui.messages import RowsLoaded
from bugdesk.tui.screens.base import ReportScreen, Target
from bugdesk.tui.store import ListQuery, ReportRow
from bugdesk.tui.widgets import CountsBar, FilterBar, ReportList, SearchInput


def target_of(row: ReportRow) -> Target:
    """The action target for a list row."""
    return Target(
        number=row.number,
        title=row.title,
        status=row.status,
        version=row.version,
        severity=row.severity,
        category=row.category,
        assignee=row.assignee,
        component=row.component,
        is_duplicate=row.is_duplicate,
    )


class MainScreen(ReportScreen):
    """The report list. It loads one page at a time (keyset cursors) and the next when the cursor nears the end."""

    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("f", "filter", "Filter"),
        Binding("s", "sort", "Sort", show=False),
        Binding("b", "toggle_breached", "Breached", show=False),
        Binding("d", "toggle_duplicates", "Duplicates", show=False),
        Binding("c", "clear_filters", "Clear filters", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, query: ListQuery | None = None) -> None:
        super().__init__()
        self.list_query = query or ListQuery()
        """What the list shows."""
        self.generation = 0
        """Bumped for every new query; answers to older ones are dropped."""
        self.next_cursor: str | None = None
        """Where the next page starts (None: everything is loaded)."""
        self.loading = False

    def compose(self) -> ComposeResult:
        yield CountsBar(now=self.app.now, id="counts")  # type: ignore[attr-defined]
        yield FilterBar(id="filter-bar")
        yield ReportList(now=self.app.now, id="reports")  # type: ignore[attr-defined]
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.load("replace")
        self.query_one(ReportList).focus()

    @property
    def table(self) -> ReportList:
        return self.query_one(ReportList)

    # -- loading -----------------------------------------------------------------------------

    def load(self, mode: str) -> None:
        """Start loading rows: ``replace`` for a new query, ``append`` for the next page, ``refresh`` to re-read."""
        if mode == "replace":
            self.generation += 1
            self.next_cursor = None
        elif mode == "append" and (self.next_cursor is None or self.loading):
            return
        self.loading = mode != "refresh"
        self._show_filters()
        # A new query or a refresh supersedes the previous one; pages go in their own group so a
        # refresh landing in between does not cancel the page the user is scrolling towards.
        group = "more" if mode == "append" else "list"
        self.run_worker(
            partial(self._load, self.generation, mode, self.next_cursor, len(self.table.rows_shown)),
            group=group,
            exclusive=True,
            exit_on_error=False,
        )

    async def _load(self, generation: int, mode: str, cursor: str | None, count: int) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        query = self.list_query
        if mode == "refresh":
            page = await store.call(store.reload, query, count)
        else:
            page = await store.call(store.page, query, cursor if mode == "append" else None)
        self.post_message(RowsLoaded(generation=generation, page=page, mode=mode))

    def on_rows_loaded(self, message: RowsLoaded) -> None:
        if message.generation != self.generation:
            return  # an answer to a query the list no longer shows
        self.loading = False
        self.next_cursor = message.page.next_cursor
        self.table.empty_text = "no reports match: c clears the filters, / changes the search, f edits them"
        self.table.set_rows(message.page.rows, message.mode)
        self._show_filters()
        self.refresh_actions()
        if self.table.near_end():
            self.load("append")

    def reload(self) -> None:
        self.load("refresh")

    def set_query(self, query: ListQuery) -> None:
        """Show ``query`` from its first page."""
        self.list_query = query
        self.load("replace")

    def _show_filters(self) -> None:
        self.query_one(FilterBar).show(
            self.list_query, len(self.table.rows_shown), more=self.next_cursor is not None, loading=self.loading
        )

    # -- the list --------------------------------------------------------------------------------

    def current_target(self, kind: str | None = None) -> Target | None:
        row = self.table.current_row
        return target_of(row) if row is not None else None

    @on(ReportList.NearEnd)
    def _near_end(self) -> None:
        if self.table.near_end():
            self.load("append")

    @on(ReportList.SortRequested)
    def _sort_requested(self, event: ReportList.SortRequested) -> None:
        sort = event.sort
        if self.list_query.sort == sort:  # the same header again: other direction
            sort = sort[1:] if sort.startswith("-") else f"-{sort}"
            if sort not in ("sla_due_at", "-sla_due_at", "-created_at", "created_at", "-number", "number"):
                sort = event.sort
        self.set_query(replace(self.list_query, sort=sort))

    @on(ReportList.Highlighted)
    def _highlighted(self) -> None:
        # The footer shows only the actions that apply to the highlighted report.
        self.refresh_actions()

    @on(ReportList.Selected)
    def _selected(self, event: ReportList.Selected) -> None:
        self.app.open_report(event.row.number)  # type: ignore[attr-defined]

    # -- filters, search, sort -------------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one(FilterBar).start_search(self.list_query.search)

    @on(FilterBar.SearchSubmitted)
    def _search(self, event: FilterBar.SearchSubmitted) -> None:
        self.table.focus()
        self.set_query(replace(self.list_query, search=event.text or None))

    @on(SearchInput.Cancelled)
    def _search_cancelled(self) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        def apply(query: ListQuery | None) -> None:
            if query is not None and query != self.list_query:
                self.set_query(query)

        self.app.push_screen(FilterDialog(self.list_query), apply)

    def action_sort(self) -> None:
        self.set_query(self.list_query.next_sort())

    def action_toggle_breached(self) -> None:
        self.set_query(replace(self.list_query, breached=not self.list_query.breached))

    def action_toggle_duplicates(self) -> None:
        self.set_query(replace(self.list_query, duplicates=not self.list_query.duplicates))

    def action_clear_filters(self) -> None:
        self.set_query(self.list_query.cleared())
