"""The dashboard's data layer without a screen: change detection, paging, actions, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from bugdesk import service
from bugdesk.config import Settings
from bugdesk.errors import IllegalTransition
from bugdesk.models import BugReportEvent
from bugdesk.tui.store import Action, ListQuery, Store


@pytest.fixture
def store(db, db_url):
    """A started Store on the test database (its own thread and connection), closed afterwards."""
    s = Store(Settings(database_url=db_url), page_size=2)
    s.start()
    yield s
    s.close()


def test_a_write_on_another_connection_is_noticed_once(store, make_report):
    assert store.run_sync(store.changed) is False
    make_report()  # the test's own connection, not the store's
    assert store.run_sync(store.changed) is True
    assert store.run_sync(store.changed) is False


def test_pages_follow_the_cursor_and_reload_keeps_what_was_loaded(store, make_report):
    numbers = [make_report(severity="low").number for _ in range(5)]
    query = ListQuery(sort="-number")
    first = store.run_sync(store.page, query)
    second = store.run_sync(store.page, query, first.next_cursor)
    assert [r.number for r in first.rows + second.rows] == numbers[::-1][:4]
    again = store.run_sync(store.reload, query, 4)
    assert [r.number for r in again.rows] == numbers[::-1][:4] and again.next_cursor is not None


def test_an_action_returns_the_new_state_with_its_event(store, make_report):
    number = make_report().number
    result = store.run_sync(store.perform, Action("move", number, "alice", 1, fields={"status": "in_progress"}))
    assert result.detail.report.status == "in_progress"
    assert (result.detail.events[0].kind, result.detail.events[0].actor) == ("status_changed", "alice")
    assert BugReportEvent.select().where(BugReportEvent.kind == "status_changed").count() == 1


def test_an_illegal_move_is_refused_with_the_allowed_targets(store, make_report):
    number = make_report().number
    with pytest.raises(IllegalTransition, match="allowed from new: triaged, in_progress, resolved, closed"):
        store.run_sync(store.perform, Action("move", number, "alice", fields={"status": "awaiting_verification"}))


def test_detail_lists_the_group_and_its_duplicates(store, make_report):
    first = make_report(title="KeyError in charge() while paying")
    dup = service.create_report({"title": "KeyError in charge() while paying", "severity": "high",
                                 "component": "payments"}, "svc").report  # fmt: skip
    detail = store.run_sync(store.detail, dup.number)
    assert detail.canonical.number == first.number and detail.is_duplicate
    assert [d.number for d in detail.duplicates] == [dup.number] and detail.occurrences == 2


def test_list_query_labels_and_sort_cycle():
    query = ListQuery(severity="high", breached=True, search="timeout")
    assert query.labels() == ["status:open", "severity:high", "breached", '"timeout"']
    assert query.next_sort().sort == "-created_at"
    assert query.cleared() == ListQuery(sort=query.sort)
