"""`bugdesk ls|show|triage|move|note|resolve|reopen|check|status` through Typer's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from bugdesk import service
from bugdesk.cli import app
from bugdesk.clock import utcnow
from bugdesk.models import BugReport, BugReportEvent

runner = CliRunner()

MY_COMMANDS = ("ls", "show", "triage", "move", "note", "resolve", "reopen", "check", "status", "tui", "demo")


def run(db_url: str, *args: str, **kwargs):
    return runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False, **kwargs)


def as_json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def events(number: int, kind: str) -> list[BugReportEvent]:
    report = BugReport.get(BugReport.number == number)
    return list(BugReportEvent.select().where(BugReportEvent.report == report.id, BugReportEvent.kind == kind))


@pytest.mark.parametrize("command", MY_COMMANDS)
def test_every_command_has_help_that_ends_with_an_example(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example: bugdesk" in result.output


def test_ls_json_filters_and_pages_with_the_cursor(db, db_url, make_report):
    high = [make_report(severity="high").number for _ in range(3)]
    make_report(severity="low")
    first = as_json(run(db_url, "ls", "--severity", "high", "--limit", "2", "--sort", "number", "--json"))
    assert [r["number"] for r in first["items"]] == high[:2] and first["next_cursor"]
    assert first["items"][0]["occurrences"] == 1 and first["items"][0]["severity"] == "high"
    rest = as_json(run(db_url, "ls", "--severity", "high", "--limit", "2", "--sort", "number", "--cursor",
                       first["next_cursor"], "--json"))  # fmt: skip
    assert [r["number"] for r in rest["items"]] == high[2:] and rest["next_cursor"] is None


def test_ls_breached_and_search(db, db_url, make_report):
    late = service.create_report(
        {"title": "payment page hangs forever", "severity": "critical", "created_at": utcnow() - timedelta(hours=9)},
        "svc",
    ).report
    make_report(title="unrelated glitch in the footer")
    breached = as_json(run(db_url, "ls", "--status", "open", "--breached", "--json"))
    assert [r["number"] for r in breached["items"]] == [late.number]
    found = as_json(run(db_url, "ls", "--search", "hangs", "--json"))
    assert [r["number"] for r in found["items"]] == [late.number]


def test_ls_piped_is_plain_tab_separated_text(db, db_url, make_report):
    report = make_report(title="plain output please")
    result = run(db_url, "ls")
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["number", "severity", "status"]
    assert lines[1].split("\t")[0] == str(report.number) and lines[1].endswith("plain output please")


def test_show_json_has_group_duplicates_telemetry_and_events(db, db_url, make_report):
    first = make_report(title="KeyError in charge() while paying", trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    dup = service.create_report({"title": "KeyError in charge() while paying", "severity": "high",
                                 "component": "payments"}, "svc").report  # fmt: skip
    data = as_json(run(db_url, "show", str(first.number), "--json"))
    assert data["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert data["dedup"]["occurrences"] == 2 and data["duplicate_count"] == 1
    assert [d["number"] for d in data["duplicates"]] == [dup.number]
    assert data["events"][0]["kind"] == "created"
    plain = run(db_url, "show", f"#{first.number}")
    assert "title\tKeyError in charge() while paying" in plain.stdout and f"duplicate\t#{dup.number}" in plain.stdout


def test_show_an_unknown_report_exits_1_and_a_bad_value_exits_2(db, db_url):
    result = run(db_url, "show", "999")
    assert result.exit_code == 1 and "no bug report 999" in result.output
    bad = run(db_url, "ls", "--severity", "urgent")
    assert bad.exit_code == 2 and "use one of: critical, high, medium, low" in bad.output


def test_triage_sets_fields_and_writes_the_event(db, db_url, make_report):
    number = make_report(severity="low").number
    data = as_json(run(db_url, "triage", str(number), "--severity", "critical", "--assignee", "bob", "--actor",
                       "alice", "--json"))  # fmt: skip
    assert (data["severity"], data["assignee_id"], data["status"]) == ("critical", "bob", "triaged")
    (event,) = events(number, "triaged")
    assert event.actor == "alice" and event.data["changes"]["severity"] == ["low", "critical"]
    unassigned = as_json(run(db_url, "triage", str(number), "--unassign", "--json"))
    assert unassigned["assignee_id"] is None


def test_an_illegal_move_is_explained_with_the_allowed_targets(db, db_url, make_report):
    number = make_report().number
    result = run(db_url, "move", str(number), "awaiting_verification")
    assert result.exit_code == 1
    assert "allowed from new: triaged, in_progress, resolved, closed" in result.output
    moved = run(db_url, "move", str(number), "closed", "--reason", "wont_fix", "--note", "by design")
    assert moved.exit_code == 0 and "is now closed" in moved.output
    assert BugReport.get(BugReport.number == number).close_reason == "wont_fix"


def test_a_claimed_report_needs_force_from_a_human(db, db_url, make_report):
    number = make_report().number
    service.claim(number, "fixbot")
    refused = run(db_url, "move", str(number), "triaged", "--actor", "alice")
    assert refused.exit_code == 1 and "claimed by fixbot" in refused.output and "--force" in refused.output
    forced = run(db_url, "move", str(number), "triaged", "--actor", "alice", "--force")
    assert forced.exit_code == 0
    assert BugReport.get(BugReport.number == number).claimed_by is None


def test_note_resolve_and_reopen(db, db_url, make_report):
    number = make_report().number
    assert run(db_url, "note", str(number), "looked at it", "--actor", "alice").exit_code == 0
    assert run(db_url, "note", str(number), "-", input="from stdin\n").exit_code == 0
    assert [e.body for e in events(number, "note")] == ["looked at it", "from stdin\n"]
    resolved = as_json(run(db_url, "resolve", str(number), "--notes", "fixed", "--commit", "abc1234", "--json"))
    assert (resolved["status"], resolved["resolution_commits"]) == ("resolved", ["abc1234"])
    again = run(db_url, "resolve", str(number))
    assert again.exit_code == 1 and "reopen it first" in again.output
    reopened = as_json(run(db_url, "reopen", str(number), "--reason", "still broken", "--json"))
    assert reopened["status"] == "triaged" and events(number, "reopened")[0].body == "still broken"


def test_check_exit_codes_follow_the_thresholds(db, db_url, make_report):
    old = utcnow() - timedelta(days=3)
    for _ in range(3):
        service.create_report({"title": f"old problem {make_report().title}", "severity": "critical",
                               "created_at": old}, "svc")  # fmt: skip
    fine = run(db_url, "check", "--backlog-threshold", "10", "--breach-threshold", "10")
    assert fine.exit_code == 0 and fine.stdout.count("OK") == 2
    backlog = run(db_url, "check", "--backlog-threshold", "2", "--backlog-age", "48", "--breach-threshold", "10")
    assert backlog.exit_code == 1
    assert "FAIL backlog: 3 open report(s) older than 48h (threshold 2)" in backlog.stdout
    data = json.loads(run(db_url, "check", "--json").stdout)  # settings: breach threshold 0
    assert data["ok"] is False and data["checks"][1] | {"message": None} == {
        "name": "sla_breaches", "value": 3, "threshold": 0, "ok": False, "message": None,
    }  # fmt: skip
    from_env = run(db_url, "check", env={"BUGDESK_SLA_BREACH_THRESHOLD": "5", "BUGDESK_BACKLOG_THRESHOLD": "5"})
    assert from_env.exit_code == 0


def test_check_on_a_broken_database_url_exits_2(tmp_path):
    result = runner.invoke(app, ["--db", "mysql://nowhere/x", "check"])
    assert result.exit_code == 2


def test_status_json_and_plain(db, db_url, make_report):
    make_report(severity="high")
    data = as_json(run(db_url, "status", "--json"))
    assert data["open"] == 1 and data["open_by_severity"]["high"] == 1
    plain = run(db_url, "status").stdout.splitlines()
    assert plain[0] == "status\tcritical\thigh\tmedium\tlow\ttotal"
    assert "new\t0\t1\t0\t0\t1" in plain and "open\t1" in plain


def test_tui_refuses_an_unknown_status_filter(db, db_url):
    result = run(db_url, "tui", "--status", "sideways")
    assert result.exit_code == 2 and "open, all, done" in result.output
