"""`bugdesk db status|upgrade` and the schema guard, through Typer's runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from bugdesk.cli import app

runner = CliRunner()


def test_db_status_reports_pending_migrations_until_upgrade(tmp_path):
    url = str(tmp_path / "fresh.db")
    pending = runner.invoke(app, ["--db", url, "db", "status", "--json"])
    assert pending.exit_code == 1
    assert json.loads(pending.output)["pending"][0] == "0001_initial"
    upgraded = runner.invoke(app, ["--db", url, "db", "upgrade"])
    assert upgraded.exit_code == 0 and "applied" in upgraded.output
    assert runner.invoke(app, ["--db", url, "db", "upgrade"]).output.strip() == "up to date"
    clean = runner.invoke(app, ["--db", url, "db", "status", "--json"])
    assert clean.exit_code == 0 and json.loads(clean.output)["pending"] == []


def test_status_creates_a_brand_new_database(tmp_path):
    result = runner.invoke(app, ["--db", str(tmp_path / "new.db"), "status", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["total"] == 0


def test_a_database_with_foreign_tables_and_no_schema_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE unrelated (id INTEGER)").connection.commit()
    result = runner.invoke(app, ["--db", str(path), "status"])
    assert result.exit_code == 2
    assert "bugdesk db upgrade" in result.output
