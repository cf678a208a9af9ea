"""Provides the triage dashboard app and ``make_app``, the one factory the CLI, the demo and the tests share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from bugdesk.clock import utcnow
from bugdesk.config import Settings
from bugdesk.errors import BugdeskError, ClaimConflict, StaleVersion
from bugdesk.tui import actions
from bugdesk.tui.dialogs import ConfirmDialog
from bugdesk.tui.messages import ActionDone, DatabaseChanged, SummaryLoaded
from bugdesk.tui.screens import DetailScreen, HelpScreen, MainScreen, ReportScreen, Target
from bugdesk.tui.screens.base import ACTIONS
from bugdesk.tui.store import Action, ActionResult, ListQuery, Store, default_actor

POLL_SECONDS = 1.0
"""How often the dashboard asks whether the database changed (a microsecond PRAGMA on SQLite)."""


class BugdeskApp(App[None]):
    """The dashboard. It owns the ``Store`` (the database thread) and runs the action flows."""

    CSS_PATH = "bugdesk.tcss"
    TITLE = "bugdesk"

    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
    ]

    summary: reactive[dict[str, Any] | None] = reactive(None, always_update=True)
    """The latest header counts; every screen's ``CountsBar`` watches it."""

    def __init__(self, store: Store, *, actor: str, poll_seconds: float, query: ListQuery | None = None) -> None:
        super().__init__()
        self.store = store
        self.actor = actor
        self.poll_seconds = poll_seconds
        self._query = query

    def now(self) -> datetime:
        """The dashboard's clock (fixed in tests, so snapshots do not drift)."""
        return self.store.now()

    # -- lifetime ------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.store.start()
        self.push_screen(MainScreen(self._query))
        self.load_summary()
        if self.poll_seconds > 0:
            self.set_interval(self.poll_seconds, self._poll)

    def on_unmount(self) -> None:
        self.store.close()

    # -- reads ---------------------------------------------------------------------------------

    @work(group="summary", exclusive=True, exit_on_error=False)
    async def load_summary(self) -> None:
        """Re-read the header counts."""
        self.post_message(SummaryLoaded(await self.store.call(self.store.summary)))

    def on_summary_loaded(self, message: SummaryLoaded) -> None:
        self.summary = message.summary

    @work(group="poll", exclusive=True, exit_on_error=False)
    async def _poll(self) -> None:
        if await self.store.call(self.store.changed):
            self.post_message(DatabaseChanged())

    def on_database_changed(self, message: DatabaseChanged) -> None:
        self.refresh_all()

    def refresh_all(self) -> None:
        """Re-read the counts and whatever every open screen shows, keeping selection and scroll."""
        self.load_summary()
        for screen in self.screen_stack:
            if isinstance(screen, ReportScreen):
                screen.reload()

    def action_refresh(self) -> None:
        self.refresh_all()

    def open_report(self, number: int) -> None:
        """Show the detail view of report ``number`` (one screen, installed once and re-used)."""
        if not self.is_screen_installed("detail"):
            self.install_screen(DetailScreen(), name="detail")
        screen = self.get_screen("detail")
        assert isinstance(screen, DetailScreen)
        if self.screen is not screen:
            self.push_screen(screen)
        screen.history.clear()
        screen.open(number)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    # -- actions -------------------------------------------------------------------------------

    def start_action(self, kind: str, target: Target) -> None:
        """Run the flow for ``kind`` on ``target`` (dialogs, confirmation, service call)."""
        self.run_worker(partial(actions.FLOWS[kind], self, target), group="action", exit_on_error=False)

    async def perform(self, action: Action) -> ActionResult | None:
        """Apply ``action`` on the database thread; explain refusals; ask before overriding a claim."""
        try:
            result = await self.store.call(self.store.perform, action)
        except ClaimConflict as exc:
            if action.force or action.kind not in ("move", "resolve"):
                self.notify(str(exc), title=exc.title, severity="error", timeout=8)
                return None
            override = await self.push_screen_wait(
                ConfirmDialog("Claimed by someone else", f"{exc}\n\nOverride the claim?", confirm_label="Override")
            )
            return await self.perform(replace(action, force=True)) if override else None
        except StaleVersion as exc:
            self.notify(f"{exc}. The view is refreshed: check it and try again.", title=exc.title, severity="warning")
            self.refresh_all()
            return None
        except BugdeskError as exc:
            self.notify(str(exc), title=exc.title, severity="error", timeout=8)
            return None
        self.post_message(ActionDone(result))
        return result

    def on_action_done(self, message: ActionDone) -> None:
        result = message.result
        detail = result.detail
        self.notify(result.message, title="done")
        for screen in self.screen_stack:
            showing = isinstance(screen, DetailScreen) and (
                screen.number == detail.number
                # After a merge the source's view follows it into the group it joined.
                or (result.action.kind == "merge" and screen.number == result.action.number)
            )
            if showing:
                screen.show(detail)  # the new state and its event at once, without another round trip
            elif isinstance(screen, ReportScreen):
                screen.reload()
        self.load_summary()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # One place for failures of any worker: a message, never a crash of the dashboard.
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, BugdeskError):
            self.notify(str(error), title=error.title, severity="error", timeout=8)
        else:
            self.notify(f"{type(error).__name__}: {error}", title="unexpected error", severity="error", timeout=8)

    # -- command palette -----------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if isinstance(screen, ReportScreen):
            for kind, help_text in ACTIONS.items():
                target = screen.current_target(kind)
                if target is not None and screen.applicable(kind):
                    yield SystemCommand(
                        f"{kind.capitalize()} #{target.number}",
                        help_text,
                        getattr(screen, f"action_{kind}"),
                    )
        if isinstance(screen, MainScreen):
            yield SystemCommand(
                "Filter reports", "Status, severity, category, assignee, breached", screen.action_filter
            )
            yield SystemCommand("Search reports", "Full-text search over titles and descriptions", screen.action_search)
            yield SystemCommand("Next sort", "SLA due, newest, oldest, recently updated, number", screen.action_sort)
            yield SystemCommand("Clear filters", "Back to all open reports", screen.action_clear_filters)
        yield SystemCommand("Refresh", "Re-read counts and reports now", self.refresh_all)
        yield SystemCommand("Keys", "Show every key binding", self.action_help)


def make_app(
    settings: Settings,
    *,
    now: Callable[[], datetime] | None = None,
    actor: str | None = None,
    poll_seconds: float = POLL_SECONDS,
    page_size: int | None = None,
    query: ListQuery | None = None,
) -> BugdeskApp:
    """Build the dashboard for ``settings.database_url``.

    Args:
        settings: where the database is, and the SLA policy triage uses.
        now: the clock (tests pass a fixed one so countdowns and snapshots are stable).
        actor: who changes are recorded as (default: ``default_actor()``).
        poll_seconds: how often to look for changes made elsewhere; 0 turns live refresh off.
        page_size: rows per page of the list.
        query: the list's initial filters and sort (default: open reports by SLA due).
    """
    store = Store(settings, now=now or utcnow, **({"page_size": page_size} if page_size else {}))
    return BugdeskApp(store, actor=actor or default_actor(), poll_seconds=poll_seconds, query=query)
