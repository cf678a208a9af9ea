"""`bugdesk demo --no-tui` and the demo generator: realistic, deterministic, made through the service layer."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from typer.testing import CliRunner

from bugdesk import db as dbmod
from bugdesk import demo, queries
from bugdesk.cli import app
from bugdesk.config import Settings
from bugdesk.models import BugReport, BugReportEvent, Release

runner = CliRunner()

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def build(path, reports: int = 300, seed: int = 7) -> tuple[demo.DemoStats, list[tuple]]:
    settings = Settings(database_url=str(path))
    with dbmod.connected(settings.database_url, settings):
        stats = demo.build(settings, reports=reports, seed=seed, now=NOW)
        rows = list(BugReport.select(BugReport.number, BugReport.title, BugReport.status, BugReport.severity,
                                     BugReport.duplicate_of).order_by(BugReport.number).tuples())  # fmt: skip
    return stats, [(n, t, s, sev, dup is not None) for n, t, s, sev, dup in rows]


def test_no_tui_builds_the_database_and_says_where(tmp_path):
    path = tmp_path / "demo.db"
    result = runner.invoke(app, ["demo", "--no-tui", "--db", str(path), "--reports", "300"])
    assert result.exit_code == 0, result.output
    assert f"demo database {path}" in result.output
    with dbmod.connected(str(path)):
        summary = queries.status_summary()
        assert summary["total"] > 50 and summary["duplicates"] > 50
        assert summary["open"] > 0 and summary["counts"]["resolved"] and summary["counts"]["closed"]
        kinds = {k for (k,) in BugReportEvent.select(BugReportEvent.kind).distinct().tuples()}
        assert {"created", "triaged", "claimed", "note", "agent_log", "resolved", "occurrence"} <= kinds
        assert Release.select().count() > 10
        assert BugReport.select().where(BugReport.trace_id.is_null(False)).count() == BugReport.select().count()


def test_the_same_seed_and_clock_give_the_same_data(tmp_path):
    stats_a, rows_a = build(tmp_path / "a.db")
    _, rows_b = build(tmp_path / "b.db")
    assert rows_a == rows_b
    assert stats_a.regressions > 0 and stats_a.merges > 0 and stats_a.claims > 0 and stats_a.live_claims > 0
    _, rows_c = build(tmp_path / "c.db", seed=8)
    assert rows_c != rows_a


def test_an_earlier_demo_database_is_replaced_but_no_other_file(tmp_path):
    path = tmp_path / "demo.db"
    assert runner.invoke(app, ["demo", "--no-tui", "--db", str(path), "--reports", "50"]).exit_code == 0
    again = runner.invoke(app, ["demo", "--no-tui", "--db", str(path), "--reports", "50"])
    assert again.exit_code == 0 and "replacing the earlier demo database" in again.output
    other = tmp_path / "precious.db"
    sqlite3.connect(other).execute("CREATE TABLE keep (x)").connection.close()
    refused = runner.invoke(app, ["demo", "--no-tui", "--db", str(other)])
    assert refused.exit_code == 2 and "is not a bugdesk demo database" in refused.output
    assert sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall() == [("keep",)]
