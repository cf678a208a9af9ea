"""Provides the detail view of one report: overview, stack trace, dedup group with its duplicates, timeline."""

from __future__ import annotations

from functools import partial

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Label

from bugdesk.tui.messages import DetailLoaded
from bugdesk.tui.screens.base import ReportScreen, Target
from bugdesk.tui.screens.main import target_of
from bugdesk.tui.store import ReportDetail
from bugdesk.tui.widgets import CountsBar, DuplicatesTable, GroupSummary, ReportOverview, StackTrace, Timeline


class DetailScreen(ReportScreen):
    """Everything about one report. The actions apply to it (split: to itself or the highlighted duplicate).

    The app installs one instance and re-uses it for every report: composing and styling a
    fresh screen costs more than the database read. Reports opened from here (a duplicate)
    are remembered, so Escape walks back through them before returning to the list.
    """

    BINDINGS = [
        Binding("escape,q", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.number: int | None = None
        """The report shown (a merge can switch it to the group it went into)."""
        self.detail: ReportDetail | None = None
        self.history: list[int] = []
        """Reports opened before this one from this screen, for Escape."""
        self._requested: int | None = None

    def compose(self) -> ComposeResult:
        yield CountsBar(now=self.app.now, id="counts")  # type: ignore[attr-defined]
        with VerticalScroll(id="detail-body"):
            yield ReportOverview("loading…", id="overview")
            yield Label("stack trace", classes="section")
            yield StackTrace(id="stacktrace")
            yield Label("dedup group", classes="section")
            yield GroupSummary(id="group")
            yield DuplicatesTable(id="duplicates")
            yield Label("timeline (newest first)", classes="section")
            yield Timeline(id="timeline")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one(DuplicatesTable).display = False

    def on_screen_resume(self) -> None:
        # The app may ask for a report before this screen is composed; it is shown once it is.
        if self.number is not None and self._requested != self.number:
            self.open(self.number)

    def open(self, number: int) -> None:
        """Show report ``number`` from the top (``history`` is up to the caller)."""
        self.number = number
        self.detail = None
        if not self.is_mounted:
            return
        self.query_one(ReportOverview).update(f"loading #{number}…")
        body = self.query_one("#detail-body", VerticalScroll)
        body.scroll_home(animate=False)
        body.focus()
        self.refresh_actions()
        self.reload()

    def reload(self) -> None:
        if self.number is not None:
            self._requested = self.number
            # A partial, not a coroutine: a load superseded before it starts leaves nothing un-awaited.
            self.run_worker(partial(self._load, self.number), group="detail", exclusive=True, exit_on_error=False)

    async def _load(self, number: int) -> None:
        store = self.app.store  # type: ignore[attr-defined]
        self.post_message(DetailLoaded(await store.call(store.detail, number)))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.detail.number == self.number:  # not an answer for a report left meanwhile
            self.show(message.detail)

    def show(self, detail: ReportDetail) -> None:
        """Render ``detail`` in place (the scroll position stays where it is)."""
        self.detail = detail
        self.number = detail.number
        now = self.app.now()  # type: ignore[attr-defined]
        with self.app.batch_update():  # one repaint for all sections, not one each
            self.query_one(ReportOverview).show(detail, now)
            self.query_one(StackTrace).show(detail.report.stacktrace)
            self.query_one(GroupSummary).show(detail)
            self.query_one(DuplicatesTable).show(detail.duplicates, now)
            self.query_one(Timeline).show(detail.events, now)
            self.refresh_actions()

    def current_target(self, kind: str | None = None) -> Target | None:
        if self.detail is None:
            return None
        r = self.detail.report
        if kind == "split" and not self.detail.is_duplicate:
            # A canonical report cannot be split; its highlighted duplicate can.
            row = self.query_one(DuplicatesTable).current_row
            return target_of(row) if row is not None else None
        return Target(
            number=r.number,
            title=r.title,
            status=r.status,
            version=r.version,
            severity=r.severity,
            category=r.category,
            assignee=r.assignee_id,
            component=r.component,
            is_duplicate=self.detail.is_duplicate,
        )

    @on(DataTable.RowSelected, "#duplicates")
    def _open_duplicate(self) -> None:
        row = self.query_one(DuplicatesTable).current_row
        if row is not None and self.number is not None:
            self.history.append(self.number)
            self.open(row.number)

    def action_back(self) -> None:
        if self.history:
            self.open(self.history.pop())
        else:
            self.app.pop_screen()
