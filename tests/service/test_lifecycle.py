"""The transition table: every allowed move works, every other is refused with the allowed targets."""

from __future__ import annotations

import pytest

from bugdesk import errors, lifecycle, service
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service._base import guarded_update

PAIRS = [(a, b) for a in lifecycle.STATUSES for b in lifecycle.STATUSES if a != b]


def _force_status(report: BugReport, status: str) -> BugReport:
    """Put a report into ``status`` directly (test set-up only)."""
    from bugdesk.clock import utcnow

    guarded_update(report, None, utcnow(), status=status)
    return report


@pytest.mark.parametrize(("source", "target"), PAIRS)
def test_every_transition_is_allowed_exactly_when_the_table_says_so(db, make_report, source, target):
    report = _force_status(make_report(), source)
    events_before = BugReportEvent.select().where(BugReportEvent.report == report.id).count()
    if target in lifecycle.allowed_targets(source):
        moved = service.move(report.id, target, "tester", version=report.version, force=True)
        assert moved.status == target
        stored = BugReport.get_by_id(report.id)
        assert stored.status == target
        fixed = target == "resolved" or (target == "closed" and stored.close_reason == "done")
        assert (stored.resolved_at is not None) == fixed
        event = (
            BugReportEvent.select().where(BugReportEvent.report == report.id).order_by(BugReportEvent.id.desc()).first()
        )
        assert (event.from_status, event.to_status) == (source, target)
        assert BugReportEvent.select().where(BugReportEvent.report == report.id).count() == events_before + 1
    else:
        with pytest.raises(errors.IllegalTransition) as info:
            service.move(report.id, target, "tester", version=report.version, force=True)
        assert info.value.details["allowed"] == list(lifecycle.allowed_targets(source))
        for allowed in lifecycle.allowed_targets(source):
            assert allowed in str(info.value)
        assert BugReport.get_by_id(report.id).status == source
        assert BugReportEvent.select().where(BugReportEvent.report == report.id).count() == events_before


def test_stale_version_is_refused_and_changes_nothing(db, make_report):
    report = make_report()
    service.triage(report.id, "human", version=report.version, severity="low")
    with pytest.raises(errors.StaleVersion) as info:
        service.triage(report.id, "human", version=report.version - 1 if report.version > 1 else 1, severity="critical")
    assert "re-read" in str(info.value)
    assert BugReport.get_by_id(report.id).severity == "low"


def test_triage_recomputes_the_sla_from_the_creation_time(db, make_report, settings):
    report = make_report(severity="low")
    updated = service.triage(report.id, "human", version=report.version, severity="critical")
    assert updated.status == "triaged"
    assert updated.sla_due_at == report.created_at + settings.sla_for("critical")
    event = BugReportEvent.select().where(BugReportEvent.report == report.id, BugReportEvent.kind == "triaged").get()
    assert event.data["changes"]["severity"] == ["low", "critical"]


def test_resolve_sets_resolved_at_and_reopen_clears_it(db, make_report):
    report = make_report()
    resolved = service.resolve(report.id, "agent-1", notes="fixed the key", commits=["a" * 40])
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert BugReport.get_by_id(report.id).resolution_commits == ["a" * 40]
    reopened = service.reopen(report.id, "human", reason="still failing")
    assert reopened.status == "triaged" and reopened.resolved_at is None
    kinds = [
        e.kind for e in BugReportEvent.select().where(BugReportEvent.report == report.id).order_by(BugReportEvent.id)
    ]
    assert kinds == ["created", "resolved", "reopened"]


def test_bad_commit_sha_is_refused_with_the_field_named(db, make_report):
    report = make_report()
    with pytest.raises(errors.ValidationError) as info:
        service.resolve(report.id, "agent-1", commits=["not-a-sha"])
    assert info.value.details["field"] == "commits"
    assert BugReport.get_by_id(report.id).status == "new"


def test_notes_and_agent_logs_become_events_with_their_actor(db, make_report):
    report = make_report()
    service.add_note(report.id, "agent-7", "looking at charge.py", kind="agent_log", data={"step": 1})
    service.add_note(f"#{report.number}", "alice", "seen in prod too")
    events = list(BugReportEvent.select().where(BugReportEvent.report == report.id).order_by(BugReportEvent.id))
    assert [(e.kind, e.actor) for e in events[1:]] == [("agent_log", "agent-7"), ("note", "alice")]
    assert events[1].data == {"step": 1}


def test_unknown_severity_names_the_allowed_values(db):
    with pytest.raises(errors.ValidationError) as info:
        service.create_report({"title": "x", "severity": "urgent"}, "tester")
    assert info.value.details["field"] == "severity"
    assert "critical, high, medium, low" in str(info.value)
    assert BugReport.select().count() == 0


def test_blank_title_is_refused(db):
    with pytest.raises(errors.ValidationError) as info:
        service.create_report({"title": "   "}, "tester")
    assert info.value.details["field"] == "title"


def test_timestamps_come_back_timezone_aware_in_utc(db, make_report):
    report = make_report()
    stored = BugReport.get_by_id(report.id)
    assert stored.created_at.utcoffset().total_seconds() == 0
    assert stored.sla_due_at > stored.created_at


def test_numbers_are_sequential_and_reports_are_found_by_number_or_uuid(db, make_report):
    first, second = make_report(), make_report()
    assert second.number == first.number + 1
    from bugdesk.service._base import get_report

    assert get_report(str(second.number)).id == second.id
    assert get_report(f"#{first.number}").id == first.id
    assert get_report(str(first.id)).number == first.number
    with pytest.raises(errors.NotFound):
        get_report(99999)
    with pytest.raises(errors.ValidationError):
        get_report("../../etc/passwd")
