"""The report list: what it shows, filters, search, sort, paging, and live refresh that keeps its place."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import Select
from tuikit import NOW, settle, text_of

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.config import Settings
from bugdesk.models import BugReportEvent
from bugdesk.tui.app import make_app
from bugdesk.tui.dialogs import FilterDialog
from bugdesk.tui.screens import HelpScreen
from bugdesk.tui.widgets import CountsBar, ReportList

pytestmark = pytest.mark.asyncio


def shown(app) -> list[int]:
    return [row.number for row in app.screen.query_one(ReportList).rows_shown]


async def test_the_list_shows_open_canonical_reports_most_urgent_first(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        # #5 is a duplicate of #1 and #6 is resolved; by SLA due: #2 (breached), #1, #7, #3, #4.
        assert shown(app) == [2, 1, 7, 3, 4]
        header = text_of(app.screen.query_one(CountsBar))
        assert "open 5" in header and "breached 1" in header and "claims 1" in header


async def test_search_from_the_keyboard_and_escape_leaves_it_alone(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"search", "enter")
        await settle(pilot)
        assert shown(app) == [2]
        await pilot.press("slash", "x", "escape")
        await settle(pilot)
        assert shown(app) == [2] and app.screen.list_query.search == "search"
        assert app.screen.focused is app.screen.query_one(ReportList)


async def test_filters_from_the_dialog_and_the_quick_keys(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FilterDialog)
        await pilot.press("enter", "down", "enter")  # status: open -> all
        assert app.screen.query_one("#status", Select).value == "all"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert sorted(shown(app)) == [1, 2, 3, 4, 6, 7]
        await pilot.press("b")  # breached only
        await settle(pilot)
        assert shown(app) == [2]
        await pilot.press("c")  # clear: open reports again
        await settle(pilot)
        assert shown(app) == [2, 1, 7, 3, 4]
        await pilot.press("d")  # with duplicates
        await settle(pilot)
        assert 5 in shown(app)


async def test_s_cycles_the_sort(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("s")  # newest first
        await settle(pilot)
        assert shown(app) == [1, 4, 3, 2, 7]
        await pilot.press("s")  # oldest first
        await settle(pilot)
        assert shown(app) == [7, 2, 3, 4, 1]


async def test_help_screen_opens_and_closes(dashboard):
    app = dashboard()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def _word(i: int) -> str:
    """A distinct word per ``i`` without digits or hex letters, so each title gets its own fingerprint."""
    letters = "ghijklmnopqrstuvwxyz"
    return "".join(letters[(i // 20**k) % 20] for k in range(3))


@pytest.fixture
def many_settings(tmp_path) -> Settings:
    """135 open reports, one a minute, for paging."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'many.db'}")
    with dbmod.connected(settings.database_url, settings):
        for i in range(135):
            when = NOW - timedelta(minutes=300 - i)
            data = {"title": f"problem with the {_word(i)} widget", "severity": "low", "created_at": when}
            service.create_report(data, "ingest", settings=settings, now=when)
    return settings


async def test_the_list_pages_in_as_the_cursor_nears_the_end(many_settings):
    app = make_app(many_settings, now=lambda: NOW, actor="tester", poll_seconds=0, page_size=50)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ReportList)
        assert len(table.rows_shown) == 100  # the first page, and the next because the view reaches near its end
        assert app.screen.next_cursor is not None
        await pilot.press("end")
        await settle(pilot)
        await pilot.press("end")
        await settle(pilot)
        numbers = shown(app)
        assert len(numbers) == 135 == len(set(numbers))
        assert app.screen.next_cursor is None


async def test_a_change_elsewhere_shows_up_without_losing_the_place(many_settings):
    app = make_app(many_settings, now=lambda: NOW, actor="tester", poll_seconds=0.05, page_size=50)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ReportList)
        table.move_cursor(70)
        await settle(pilot)
        selected, scroll_y = table.current_row.number, table.scroll_y
        assert scroll_y > 0
        target = table.rows_shown[65].number
        # Another connection (an agent, say) claims a report on screen.
        service.claim(target, "agent-7", settings=many_settings, now=NOW)
        for _ in range(100):
            await pilot.pause(0.05)
            if table.rows_shown[65].claimed_by == "agent-7":
                break
        assert table.rows_shown[65].claimed_by == "agent-7"
        assert table.current_row.number == selected and table.scroll_y == scroll_y
        assert app.summary["active_claims"] == 1


async def test_the_dashboard_lists_and_acts_on_both_backends(db, db_url, make_report):
    numbers = [make_report(severity=s).number for s in ("low", "critical", "high")]
    app = make_app(Settings(database_url=db_url), actor="tester", poll_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert sorted(shown(app)) == sorted(numbers)
        await pilot.press("n", *"seen", "enter")
        await settle(pilot)
    assert BugReportEvent.select().where(BugReportEvent.kind == "note", BugReportEvent.body == "seen").count() == 1
