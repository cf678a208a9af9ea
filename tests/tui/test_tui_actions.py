"""Actions driven by keys: each goes through the service layer, changes the database, writes its event,
and the screen shows the new state at once."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList, Select
from tuikit import settle, text_of

from bugdesk.models import BugReport, BugReportEvent
from bugdesk.tui.dialogs import ConfirmDialog, MoveDialog, TextPrompt, TriageDialog
from bugdesk.tui.screens import DetailScreen
from bugdesk.tui.widgets import ReportList, Timeline

pytestmark = pytest.mark.asyncio


def report(number: int) -> BugReport:
    return BugReport.get(BugReport.number == number)


def last_event(number: int) -> BugReportEvent:
    return (
        BugReportEvent.select()
        .where(BugReportEvent.report == report(number).id)
        .order_by(BugReportEvent.id.desc())
        .first()
    )


async def highlight(pilot, number: int) -> None:
    """Move the list cursor to report ``number`` with the arrow keys."""
    table = pilot.app.screen.query_one(ReportList)
    while table.current_row.number != number:
        await pilot.press("down")


async def test_triage_from_the_list_sets_fields_and_writes_the_event(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await highlight(pilot, 4)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TriageDialog)
        # severity: open the drop-down, go up from low to high, pick it.
        await pilot.press("enter", "up", "up", "enter")
        assert app.screen.query_one("#severity", Select).value == "high"
        await pilot.press("tab", "tab")  # category, assignee
        await pilot.press(*"bob")
        await pilot.press("enter")
        await settle(pilot)
        row = app.screen.query_one(ReportList).current_row
        assert (row.number, row.severity, row.status, row.assignee) == (4, "high", "triaged", "bob")
    stored = report(4)
    assert (stored.severity, stored.assignee_id, stored.status) == ("high", "bob", "triaged")
    event = last_event(4)
    assert (event.kind, event.actor, event.to_status) == ("triaged", "tester", "triaged")
    assert event.data["changes"]["severity"] == ["low", "high"]


async def test_move_offers_only_the_allowed_targets(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await highlight(pilot, 2)  # triaged
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, MoveDialog)
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels == ["new", "in_progress", "resolved", "closed (won't fix)", "closed (duplicate)", "closed (done)"]
        await pilot.press("down", "tab", *"ok", "enter")
        await settle(pilot)
        assert app.screen.query_one(ReportList).current_row.status == "in_progress"
    event = last_event(2)
    assert (event.kind, event.from_status, event.to_status, event.body, event.actor) == (
        "status_changed", "triaged", "in_progress", "ok", "tester"
    )  # fmt: skip


async def test_a_note_from_the_detail_view_shows_in_its_timeline_at_once(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await highlight(pilot, 1)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen) and app.screen.number == 1
        await pilot.press("n")
        await settle(pilot)
        assert isinstance(app.screen, TextPrompt)
        await pilot.press(*"confirmed", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        newest = app.screen.detail.events[0]
        assert (newest.kind, newest.body) == ("note", "confirmed")
        assert "confirmed" in text_of(app.screen.query_one(Timeline))
    event = last_event(1)
    assert (event.kind, event.actor, event.body) == ("note", "tester", "confirmed")


async def test_resolve_records_notes_and_commits_and_leaves_the_open_list(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await highlight(pilot, 7)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press(*"dedupe", "tab", *"abc1234", "enter")
        await settle(pilot)
        assert 7 not in [r.number for r in app.screen.query_one(ReportList).rows_shown]
        assert app.summary["open"] == 4
    stored = report(7)
    assert (stored.status, stored.resolution_notes, stored.resolution_commits) == (
        "resolved", "dedupe", ["abc1234"]
    )  # fmt: skip
    assert last_event(7).kind == "resolved"


async def test_reopen_a_resolved_report_from_its_detail_view(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_report(6)
        await settle(pilot)
        assert app.screen.detail.report.status == "resolved"
        await pilot.press("o")
        await settle(pilot)
        await pilot.press(*"again", "enter")
        await settle(pilot)
        assert app.screen.detail.report.status == "triaged"
    assert report(6).status == "triaged"
    event = last_event(6)
    assert (event.kind, event.body) == ("reopened", "again")


async def test_merge_asks_for_confirmation_and_no_leaves_everything_alone(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await highlight(pilot, 4)
        await pilot.press("M")
        await settle(pilot)
        await pilot.press("2", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await settle(pilot)
        assert report(4).duplicate_of_id is None
        await pilot.press("M")
        await settle(pilot)
        await pilot.press("2", "enter")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert 4 not in [r.number for r in app.screen.query_one(ReportList).rows_shown]
    assert report(4).duplicate_of_id == report(2).id
    assert last_event(4).kind == "merged" and last_event(2).kind == "merged"
    assert last_event(2).data["source"] == 4


async def test_split_a_duplicate_from_the_group_in_the_detail_view(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.open_report(1)
        await settle(pilot)
        assert [d.number for d in app.screen.detail.duplicates] == [5]
        await pilot.press("tab")  # into the duplicates list
        await pilot.press("S")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        assert app.screen.detail.duplicates == []
    assert report(5).duplicate_of_id is None
    assert last_event(5).kind == "split" and last_event(1).kind == "split"


async def test_moving_a_claimed_report_asks_before_overriding_the_claim(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await highlight(pilot, 3)  # in progress, claimed by fixbot
        assert app.screen.query_one(ReportList).current_row.claimed_by == "fixbot"
        await pilot.press("m", "enter")  # the first target: triaged
        await settle(pilot)
        assert isinstance(app.screen, ConfirmDialog)
        assert "fixbot" in text_of(app.screen.query_one(".dialog-body"))
        await pilot.press("y")
        await settle(pilot)
    stored = report(3)
    assert (stored.status, stored.claimed_by) == ("triaged", None)
    assert (last_event(3).kind, last_event(3).actor) == ("status_changed", "tester")


async def test_actions_that_do_not_apply_are_not_offered(dashboard):
    app = dashboard()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await highlight(pilot, 1)
        screen = app.screen
        assert not screen.applicable("reopen") and not screen.applicable("split")
        assert screen.applicable("resolve")
        titles = [c.title for c in app.get_system_commands(screen)]
        assert "Triage #1" in titles and "Merge #1" in titles and "Reopen #1" not in titles
        await pilot.press("o")  # nothing happens
        await settle(pilot)
        assert app.screen is screen
