"""The read-only promise: no SQL through Datasette writes, token hashes are never served, and the database is unchanged.

Every attempt goes through a live Datasette (its ASGI client) on the seeded
file; the file's bytes (database and WAL) are compared before and after.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from urllib.parse import quote

import pytest
from analystkit import Client, World, file_digest

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.analyst import guard, serve
from bugdesk.clock import utcnow

WRITES = [
    "insert into releases (sha, environment, deployed_at) values ('dead', 'x', '2024-01-01')",
    "update bug_reports set title = 'pwned'",
    "delete from bug_report_events",
    "with doomed as (select id from bug_reports) delete from bug_reports where id in (select id from doomed)",
    "with x as (select 1) update bug_reports set status = 'closed'",
    "with x as (select 1) insert into api_tokens (name, token_hash, scopes, created_at) "
    "values ('evil', 'h', 'admin', '2024-01-01')",
    "/* a comment first */ with x as (select 1) delete from agent_runs",
    "pragma journal_mode = delete",
    "pragma writable_schema = on",
    "select * from pragma_journal_mode('delete')",
    "attach database '/tmp/bugdesk-attack.db' as attack",
    "select 1; delete from bug_reports",
    "drop table bug_reports",
    "create table scratch (x)",
    "vacuum",
    "replace into releases (id, sha, environment, deployed_at) values (1, 'x', 'y', 'z')",
]

SECRET_READS = [
    "select * from api_tokens",
    "select token_hash from api_tokens",
    "select count(*) from api_tokens",
    "select name from bug_reports join api_tokens on 1 = 1",
    "with t as (select * from api_tokens) select * from t",
]


def _sql(client: Client, sql: str):
    return client.get(f"/bugdesk.json?sql={quote(sql)}&_shape=objects")


@pytest.mark.parametrize("sql", WRITES)
def test_sql_that_writes_is_refused_and_the_database_is_unchanged(client: Client, world: World, sql: str):
    before = file_digest(world.path)
    response = _sql(client, sql)
    assert response.status_code in (400, 403), response.text
    assert not response.json().get("rows")
    assert file_digest(world.path) == before
    assert "pwned" not in client.get("/bugdesk/bug_reports.json?_shape=array&_col=title").text


@pytest.mark.parametrize("sql", SECRET_READS)
def test_api_token_hashes_cannot_be_read_with_sql(client: Client, world: World, sql: str):
    response = _sql(client, sql)
    assert response.status_code == 400
    assert world.token_hash not in response.text
    assert "prohibited" in response.json()["error"] or "not authorized" in response.json()["error"]


def test_claim_token_hashes_read_as_null_everywhere(client: Client, world: World):
    sql = "select number, claimed_by, claim_token_hash from bug_reports where claimed_by is not null"
    rows = _sql(client, sql).json()["rows"]
    assert rows and all(row["claim_token_hash"] is None for row in rows)
    # Not even as an oracle: the column is NULL inside WHERE too.
    probe = _sql(client, "select count(*) as n from bug_reports where claim_token_hash is not null").json()
    assert probe["rows"] == [{"n": 0}]
    page = client.get("/bugdesk/bug_reports.json?_shape=array&claimed_by__notblank=1")
    assert page.status_code == 200 and page.json()
    assert world.claim_token_hash not in page.text
    by_filter = client.rows("/bugdesk/bug_reports.json?claim_token_hash__notblank=1")
    assert by_filter == []
    # ...while the file really holds it (the test would prove nothing otherwise).
    with sqlite3.connect(world.path) as raw:
        stored = raw.execute("select claim_token_hash from bug_reports where claimed_by is not null").fetchall()
    assert (world.claim_token_hash,) in stored


def test_the_tokens_table_page_is_forbidden_and_where_clauses_cannot_reach_it(client: Client, world: World):
    assert client.get("/bugdesk/api_tokens.json").status_code == 403
    assert client.get("/bugdesk/api_tokens/1.json").status_code == 403
    probe = client.get("/bugdesk/bug_reports.json?_where=" + quote("exists (select 1 from api_tokens)"))
    # Datasette reports the authorizer's refusal of a table-page query as a server error: refused all the same.
    assert probe.status_code >= 400 and world.token_hash not in probe.text


def test_the_live_database_cannot_be_downloaded(client: Client):
    assert client.get("/bugdesk.db").status_code == 403


def test_canned_queries_refuse_posts_and_none_is_writable(client: Client, world: World):
    before = file_digest(world.path)
    metadata = client.get("/-/metadata.json").json()
    for name, query in metadata["databases"]["bugdesk"]["queries"].items():
        assert not query.get("write"), name
        response = client.post(f"/bugdesk/{name}", data={"severity": "critical"})
        # Datasette 0.65 answers a POST to a read-only canned query with a 500 (a bug of its
        # own); what matters is that it never runs the query as a write.
        assert response.status_code >= 400, (name, response.status_code)
    assert file_digest(world.path) == before


def test_even_a_writable_canned_query_added_to_the_metadata_cannot_write(world: World):
    """Defence in depth: Datasette opens its write connection read-write, and the guard still refuses."""
    metadata = serve.build_metadata(world.path)
    metadata["databases"]["bugdesk"]["queries"]["sneaky"] = {
        "sql": "update bug_reports set title = :title",
        "write": True,
    }
    before = file_digest(world.path)
    sneaky = Client(serve.build_datasette(world.path, metadata=metadata))
    try:
        response = sneaky.post("/bugdesk/sneaky", json={"title": "pwned"}, headers={"Accept": "application/json"})
        assert response.json()["ok"] is False
    finally:
        sneaky.close()
    assert file_digest(world.path) == before


@pytest.mark.parametrize("sql", [w for w in WRITES if not w.startswith(("select 1;", "vacuum"))] + ["vacuum"])
def test_the_guard_refuses_writes_on_a_read_write_connection(world: World, sql: str):
    """SQLite refuses them at compile time even where the file itself is writable."""
    conn = sqlite3.connect(world.path)
    guard.install(conn)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute(sql)
    finally:
        conn.rollback()
        conn.close()


def test_the_guard_still_lets_schema_introspection_and_search_through(world: World):
    conn = sqlite3.connect(world.path)
    guard.install(conn)
    try:
        assert conn.execute("select count(*) from pragma_table_info('api_tokens')").fetchone()[0] == 7
        assert conn.execute("pragma table_info(bug_reports)").fetchall()
        hits = conn.execute("select rowid from bug_reports_fts where bug_reports_fts match 'frobnicate'").fetchall()
        assert hits == [(world.numbers["searchable"],)]
    finally:
        conn.close()


def test_internal_tables_are_hidden_and_every_visible_one_is_an_analyst_table(client: Client):
    tables = client.get("/bugdesk.json").json()["tables"]
    visible = {t["name"] for t in tables if not t["hidden"]}
    assert visible == {"bug_reports", "bug_report_events", "bug_report_dedup", "agent_runs", "releases"}
    hidden = {t["name"] for t in tables if t["hidden"]}
    assert {"schema_migrations", "bug_reports_fts"} <= hidden
    assert "api_tokens" not in visible  # not even listed: its page is forbidden
    assert any(name.startswith("sync_") for name in hidden)
    assert not any(name.startswith("sync_") for name in visible)


def test_the_live_database_is_read_as_it_changes_not_as_a_frozen_copy(client: Client, world: World):
    """Opened read-only with locking, not immutable: a report filed after Datasette started is visible."""
    with dbmod.connected(str(world.path)):
        number = service.create_report({"title": "filed while Datasette runs", "severity": "low"}, "late").report.number
    rows = client.rows(f"/bugdesk/bug_reports.json?number={number}")
    assert [r["title"] for r in rows] == ["filed while Datasette runs"]
    assert client.get("/-/databases.json").json()[0]["is_mutable"] is True
    # Leave the shared world as the other tests expect it.
    with sqlite3.connect(world.path) as raw:
        raw.execute(
            "delete from bug_report_events where report_id = (select id from bug_reports where number = ?)", [number]
        )
        raw.execute(
            "delete from bug_report_dedup where canonical_id = (select id from bug_reports where number = ?)", [number]
        )
        raw.execute("delete from bug_reports where number = ?", [number])
    assert utcnow() - world.now < timedelta(minutes=5)
