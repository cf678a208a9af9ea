"""Full-text search (migration 0003): Datasette's ``_search=``, the FTS triggers, PostgreSQL's GIN index."""

from __future__ import annotations

import importlib.util

import pytest
from analystkit import STACK_WORD, Client, World, word

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.service import dedup


def _migration():
    spec = importlib.util.spec_from_file_location("fts_0003", dbmod.schema_dir() / "0003_fts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_search_finds_a_report_by_a_word_of_its_stack_trace(client: Client, world: World):
    rows = client.rows(f"/bugdesk/bug_reports.json?_search={STACK_WORD}")
    assert [r["number"] for r in rows] == [world.numbers["searchable"]]
    # The whole identifier, as a phrase, finds it too; so does the exception name.
    assert client.rows(f"/bugdesk/bug_reports.json?_search={STACK_WORD}_ledger")
    assert world.numbers["searchable"] in {
        r["number"] for r in client.rows("/bugdesk/bug_reports.json?_search=KeyError")
    }
    page = client.get(f"/bugdesk/bug_reports?_search={STACK_WORD}")
    assert page.status_code == 200 and 'name="_search"' in page.text  # the search box is offered


def test_search_combines_with_filters_and_facets(client: Client, world: World):
    response = client.get(f"/bugdesk/bug_reports.json?_search={STACK_WORD}&_facet=severity&severity=high")
    body = response.json()
    assert [row[1] for row in body["rows"]] == [world.numbers["searchable"]]
    assert body["facet_results"]["severity"]["results"][0]["value"] == "high"
    assert client.rows(f"/bugdesk/bug_reports.json?_search={STACK_WORD}&severity=low") == []


@pytest.fixture
def make_sqlite_report(sqlite_db):
    """A report filed through the service layer into a migrated SQLite file (``sqlite_db``)."""

    def make(**data):
        data.setdefault("title", f"problem with the {word()} widget")
        data.setdefault("severity", "medium")
        return service.create_report(data, "tester").report

    return make


def _fts_hits(conn, word: str) -> list[int]:
    return [r[0] for r in conn.execute("SELECT rowid FROM bug_reports_fts WHERE bug_reports_fts MATCH ?", [word])]


def _check_integrity(conn) -> None:
    """FTS5 compares its index with the content table (rank 1) and raises if they differ."""
    conn.execute("INSERT INTO bug_reports_fts (bug_reports_fts, rank) VALUES ('integrity-check', 1)")


def test_the_triggers_keep_the_index_in_sync_through_insert_update_and_delete(sqlite_db, make_sqlite_report):
    report = make_sqlite_report(stacktrace="File app.py, in settle_wombat\nValueError: nope")
    conn = sqlite_db.connection()
    assert _fts_hits(conn, "wombat") == [report.number]
    conn.execute(
        "UPDATE bug_reports SET stacktrace = 'File app.py, in settle_numbat' WHERE number = ?", [report.number]
    )
    assert _fts_hits(conn, "wombat") == [] and _fts_hits(conn, "numbat") == [report.number]
    conn.execute("UPDATE bug_reports SET title = 'platypus trouble' WHERE number = ?", [report.number])
    assert _fts_hits(conn, "platypus") == [report.number]
    _check_integrity(conn)
    conn.execute("DELETE FROM bug_report_events WHERE report_id = ?", [str(report.id)])
    conn.execute("DELETE FROM bug_report_dedup WHERE canonical_id = ?", [str(report.id)])
    conn.execute("DELETE FROM bug_reports WHERE number = ?", [report.number])
    assert _fts_hits(conn, "platypus") == []
    _check_integrity(conn)


def test_claims_heartbeats_and_triage_do_not_reindex_the_stack_trace(sqlite_db, make_sqlite_report):
    """The update trigger fires only for the indexed columns: the hot write paths leave the index alone."""
    report = make_sqlite_report(stacktrace="File app.py, in settle_wombat\nValueError: nope")
    conn = sqlite_db.connection()

    def segments() -> int:
        return conn.execute("SELECT count(*) FROM bug_reports_fts_data").fetchone()[0]

    before = segments()
    claim = service.claim(report.number, "agent-a")
    service.heartbeat(report.number, claim.token)
    service.release(report.number, claim.token)
    service.triage(report.number, "alice", version=None, severity="critical")
    assert segments() == before
    conn.execute("UPDATE bug_reports SET description = 'now with detail' WHERE number = ?", [report.number])
    assert segments() > before
    _check_integrity(conn)


def test_duplicates_and_merges_are_searchable_like_any_report(sqlite_db, make_sqlite_report):
    first = make_sqlite_report(title="Quokka export failed", component="exports")
    second = make_sqlite_report(title="Quokka export failed", component="exports")
    other = make_sqlite_report(title="Wallaby import failed")
    dedup.merge(other.number, first.number, "alice")
    assert sorted(_fts_hits(sqlite_db.connection(), "quokka")) == sorted([first.number, second.number])


def test_search_by_a_stack_trace_word_works_on_either_backend(db, make_report):
    """SQLite through the FTS5 table; PostgreSQL through the GIN index of 0003, with its exact expression."""
    report = make_report(stacktrace="Traceback:\n  File app.py, in settle_wombat\nValueError: nope")
    make_report(stacktrace="Traceback:\n  File app.py, in other\nValueError: nope")
    if dbmod.is_sqlite(db):
        assert _fts_hits(db.connection(), "wombat") == [report.number]
        return
    expr = _migration().SEARCH_DOCUMENT_PG
    sql = f"SELECT number FROM bug_reports WHERE {expr} @@ plainto_tsquery('simple', %s)"
    assert [r[0] for r in db.execute_sql(sql, ["wombat"]).fetchall()] == [report.number]
    db.execute_sql("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in db.execute_sql("EXPLAIN " + sql, ["wombat"]).fetchall())
    db.execute_sql("SET enable_seqscan = on")
    assert "ix_bug_reports_search" in plan


def test_a_description_far_beyond_the_tsvector_limit_is_still_stored_on_either_backend(db, make_report):
    """The PostgreSQL index caps its document: an 8 MiB description must not make the INSERT fail."""
    words = " ".join(f"w{i:07d}x" for i in range(200_000))  # ~2 MiB of distinct words
    report = make_report(description=words)
    assert report.number >= 1


def test_the_fts_table_is_keyed_by_report_number_not_rowid(tmp_path):
    """VACUUM may renumber the rowids of a table without an INTEGER PRIMARY KEY; `number` never changes."""
    database = dbmod.open_database(str(tmp_path / "k.db"))
    database.connect()
    dbmod.upgrade(database)
    sql = database.execute_sql("SELECT sql FROM sqlite_master WHERE name = 'bug_reports_fts'").fetchone()[0]
    triggers = [r[0] for r in database.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'trigger'")]
    database.close()
    assert "content_rowid=[number]" in sql and "content=[bug_reports_search]" in sql
    assert any(
        "AFTER UPDATE OF [number], [title], [description], [stacktrace], [duplicate_of_id]" in t for t in triggers
    )


def test_a_duplicate_is_found_by_its_words_and_its_canonical_by_the_shared_stack_trace(sqlite_db, make_sqlite_report):
    trace = "Traceback:\n  File app.py, in settle_wombat\nValueError: nope"
    first = make_sqlite_report(title="Settlement failed", description="nightly run", stacktrace=trace)
    second = make_sqlite_report(title="Settlement failed", description="seen by the koala team", stacktrace=trace)
    assert second.duplicate_of_id == first.id
    conn = sqlite_db.connection()
    assert _fts_hits(conn, "wombat") == [first.number]  # the trace is indexed once, on the canonical
    assert _fts_hits(conn, "koala") == [second.number]  # what the reporter wrote, on every report
    _check_integrity(conn)


def test_a_split_indexes_the_new_canonicals_trace_and_a_merge_drops_it(sqlite_db, make_sqlite_report):
    trace = "Traceback:\n  File app.py, in settle_wombat\nValueError: nope"
    first = make_sqlite_report(title="Settlement failed", stacktrace=trace)
    second = make_sqlite_report(title="Settlement failed", stacktrace=trace)
    conn = sqlite_db.connection()
    dedup.split(second.number, "alice")
    assert sorted(_fts_hits(conn, "wombat")) == sorted([first.number, second.number])
    _check_integrity(conn)
    dedup.merge(second.number, first.number, "alice")
    assert _fts_hits(conn, "wombat") == [first.number]
    _check_integrity(conn)


def test_the_api_search_repeats_the_postgres_index_expression_verbatim():
    """PostgreSQL uses an expression index only for the identical expression (q= in bugdesk.queries)."""
    from bugdesk import models

    document = getattr(models, "PG_SEARCH_DOCUMENT", None)
    if document is None:
        pytest.skip("bugdesk.queries does not search PostgreSQL through the index yet")
    assert document == _migration().SEARCH_DOCUMENT_PG
