"""`bugdesk export sqlite`: a consistent snapshot without secrets, from SQLite and PostgreSQL, that Datasette serves."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from analystkit import Client

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.analyst import export, serve
from bugdesk.clock import utcnow
from bugdesk.errors import ConfigError
from bugdesk.models import AgentRun, ApiToken, BugReport, BugReportDedup, BugReportEvent, Release
from bugdesk.service import dedup, releases, runs, tokens

MODELS = {
    "releases": Release,
    "bug_reports": BugReport,
    "bug_report_events": BugReportEvent,
    "bug_report_dedup": BugReportDedup,
    "agent_runs": AgentRun,
}


@pytest.fixture
def seeded(db, make_report) -> dict:
    """A little of everything on the backend under test, including a token and a live claim."""
    now = utcnow()
    releases.add_release("ab" * 20, version="2.0", deployed_at=now - timedelta(days=1))
    late = make_report(severity="critical", created_at=now - timedelta(days=1), release_sha="ab" * 20)
    make_report(stacktrace="Traceback:\n  File app.py, in settle_wombat\nValueError: nope", severity="low")
    for _ in range(3):
        make_report(title="Recurring export timeout", component="exports")
    first = make_report(title="Avatar upload rejected")
    make_report(title="Avatar resize crashed")
    dedup.merge(first.number, late.number, "alice")
    claim = service.claim(late.number, "agent-a", lease_seconds=3600)
    run = runs.start_agent_run(late.number, "agent-a")
    runs.finish_agent_run(run.id, "succeeded", commits=["c0ffee1"])
    token, _ = tokens.create_token("exporter", "read")
    return {
        "counts": {name: model.select().count() for name, model in MODELS.items()},
        "token_hash": token.token_hash,
        "claim_token_hash": BugReport.get(BugReport.number == late.number).claim_token_hash,
        "claim": claim,
        "late": late.number,
    }


def _snapshot_rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        return conn.execute(sql).fetchall()


def test_the_snapshot_matches_the_source_and_holds_no_secret(db, db_url, seeded, tmp_path):
    out = tmp_path / "snapshot.db"
    result = export.export_sqlite(db_url, out)
    assert result.counts == seeded["counts"]
    for table, count in seeded["counts"].items():
        assert _snapshot_rows(out, f"SELECT count(*) FROM {table}") == [(count,)], table
    assert ApiToken.select().count() == 1  # the source has one...
    assert _snapshot_rows(out, "SELECT count(*) FROM api_tokens") == [(0,)]  # ...the snapshot none
    assert _snapshot_rows(out, "SELECT count(*) FROM bug_reports WHERE claim_token_hash IS NOT NULL") == [(0,)]
    raw = out.read_bytes()
    assert seeded["token_hash"].encode() not in raw and seeded["claim_token_hash"].encode() not in raw
    assert not Path(f"{out}-wal").exists()  # one self-contained file
    assert _snapshot_rows(out, "PRAGMA journal_mode") == [("delete",)]


def test_the_snapshot_stores_values_as_bugdesk_does_on_sqlite(db, db_url, seeded, tmp_path):
    """Times as fixed-width UTC text, UUIDs as text, booleans as 0/1, whatever the source backend."""
    out = tmp_path / "snapshot.db"
    export.export_sqlite(db_url, out)
    source = BugReport.get(BugReport.number == seeded["late"])
    sql = f"SELECT id, created_at, sla_due_at, needs_human FROM bug_reports WHERE number = {source.number}"
    (row,) = _snapshot_rows(out, sql)
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    assert row == (str(source.id), source.created_at.strftime(fmt), source.sla_due_at.strftime(fmt), 0)
    events = _snapshot_rows(out, "SELECT data FROM bug_report_events WHERE kind = 'merged' LIMIT 1")
    assert events and events[0][0].startswith("{")


def test_datasette_serves_the_snapshot_with_search_and_canned_queries(db, db_url, seeded, tmp_path):
    out = tmp_path / "snapshot.db"
    export.export_sqlite(db_url, out)
    client = Client(serve.build_datasette(out, immutable=True))
    try:
        assert [r["number"] for r in client.rows("/bugdesk/bug_reports.json?_search=wombat")] == [
            n for (n,) in _snapshot_rows(out, "SELECT number FROM bug_reports WHERE stacktrace LIKE '%wombat%'")
        ]
        breaches = client.rows("/bugdesk/sla_breaches.json")
        assert [r["number"] for r in breaches] == [seeded["late"]]
        clusters = client.rows("/bugdesk/top_duplicate_clusters.json")
        assert {r["occurrences"] for r in clusters} == {3, 2}
        assert client.rows("/bugdesk/reports_by_release.json?release=2.0")[0]["number"] == seeded["late"]
        assert client.get("/-/databases.json").json()[0]["is_mutable"] is False
        assert client.get("/bugdesk.json?sql=select+*+from+api_tokens").status_code == 400
    finally:
        client.close()


def test_a_report_filed_during_the_export_is_wholly_in_or_wholly_out(db, db_url, seeded, tmp_path, monkeypatch):
    """All tables come from one snapshot: a report committed between two table copies is in none of them."""
    copy_name = "_copy_sqlite_table" if db_url.startswith("sqlite") else "_copy_postgres_table"
    real_copy = getattr(export, copy_name)
    filed = []

    def copy_then_file(conn, *args):
        copied = real_copy(conn, *args)
        if not filed:  # after the first table, another writer files a report
            filed.append(service.create_report({"title": "filed mid-export", "severity": "low"}, "racer").report)
        return copied

    monkeypatch.setattr(export, copy_name, copy_then_file)
    out = tmp_path / "snapshot.db"
    result = export.export_sqlite(db_url, out)
    assert filed and BugReport.get_or_none(BugReport.number == filed[0].number)  # committed in the source
    assert result.counts == seeded["counts"]
    assert _snapshot_rows(out, f"SELECT count(*) FROM bug_reports WHERE number = {filed[0].number}") == [(0,)]
    orphans = (
        "SELECT count(*) FROM bug_report_events e LEFT JOIN bug_reports r ON r.id = e.report_id WHERE r.id IS NULL"
    )
    assert _snapshot_rows(out, orphans) == [(0,)]


def test_an_existing_file_is_kept_unless_forced_and_a_failed_export_leaves_nothing(db, db_url, tmp_path, monkeypatch):
    target = tmp_path / "out"
    target.mkdir()
    out = target / "snapshot.db"
    out.write_text("precious")
    with pytest.raises(ConfigError, match="--force"):
        export.export_sqlite(db_url, out)
    assert out.read_text() == "precious"

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "_copy_sqlite_table" if db_url.startswith("sqlite") else "_copy_postgres_table", broken)
    with pytest.raises(RuntimeError):
        export.export_sqlite(db_url, target / "fresh.db")
    assert sorted(p.name for p in target.iterdir()) == ["snapshot.db"]


def test_exporting_a_sqlite_database_onto_itself_is_refused(tmp_path):
    path = tmp_path / "bugdesk.db"
    with dbmod.connected(str(path)):
        pass
    with pytest.raises(ConfigError, match="another file"):
        export.export_sqlite(str(path), path, force=True)


def test_the_snapshot_has_the_schema_of_a_migrated_database_and_a_consistent_search_index(db, db_url, seeded, tmp_path):
    """Indexes and triggers are set aside during the load and rebuilt: the result must equal the migrations'."""
    out = tmp_path / "snapshot.db"
    export.export_sqlite(db_url, out)
    fresh = tmp_path / "fresh.db"
    database = dbmod.open_database(str(fresh))
    database.connect()
    dbmod.upgrade(database)
    database.close()
    schema = (
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_stat%' ORDER BY type, name"
    )
    assert _snapshot_rows(out, schema) == _snapshot_rows(fresh, schema)
    with sqlite3.connect(out) as conn:
        conn.execute("INSERT INTO bug_reports_fts (bug_reports_fts, rank) VALUES ('integrity-check', 1)")
        conn.rollback()


def test_only_sqlite_and_postgresql_sources_are_exported(tmp_path):
    with pytest.raises(ConfigError, match="SQLite or PostgreSQL"):
        export.export_sqlite("mysql://localhost/bugdesk", tmp_path / "out.db")
