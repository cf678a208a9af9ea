"""`bugdesk merge|split|regroup|enrich|release` through Typer's runner on a real database."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bugdesk import service
from bugdesk.cli import app
from bugdesk.models import BugReport, Release

runner = CliRunner()


def run(db_url: str, *args: str):
    return runner.invoke(app, ["--db", db_url, *args], catch_exceptions=False)


def test_release_add_and_list(db, db_url):
    result = run(db_url, "release", "add", "ABCDEF1234567", "--version", "2.0.0", "--env", "staging",
                 "--at", "2025-03-01T12:00:00")  # fmt: skip
    assert result.exit_code == 0, result.output
    listed = json.loads(run(db_url, "release", "ls", "--json").output)
    assert listed[0]["sha"] == "abcdef1234567" and listed[0]["environment"] == "staging"
    assert Release.select().count() == 1


def test_a_bad_sha_is_an_error_with_exit_code_2(db, db_url):
    result = runner.invoke(app, ["--db", db_url, "release", "add", "not-a-sha"])
    assert result.exit_code == 2
    assert "not a commit SHA" in result.output


def test_merge_and_split_from_the_command_line(db, db_url):
    a = service.create_report({"title": "export button does nothing"}, "svc").report
    b = service.create_report({"title": "report page crashes on load"}, "svc").report
    result = run(db_url, "merge", str(b.number), str(a.number), "--actor", "alice")
    assert result.exit_code == 0 and f"#{a.number}" in result.output
    assert BugReport.get_by_id(b.id).duplicate_of_id == a.id
    assert run(db_url, "split", str(b.number)).exit_code == 0
    assert BugReport.get_by_id(b.id).duplicate_of_id is None
    refused = runner.invoke(app, ["--db", db_url, "split", str(a.number)])
    assert refused.exit_code == 2 and "canonical" in refused.output


def test_regroup_dry_run_and_enrich_report_json(db, db_url):
    service.create_report({"title": "slow dashboard"}, "svc")
    plan = json.loads(run(db_url, "regroup", "--dry-run", "--json").output)
    assert plan["reports"] == 1 and plan["reports_that_move"] == 0
    stats = json.loads(run(db_url, "enrich", "--json").output)
    assert stats["scanned"] == 1
