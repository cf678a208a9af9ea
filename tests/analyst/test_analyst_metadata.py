"""datasette-metadata.json stays true to the schema: every visible table and column described, queries well-formed."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from bugdesk import db as dbmod
from bugdesk.analyst import guard, serve

METADATA = json.loads(serve.metadata_path().read_text(encoding="utf-8"))
DATABASE = METADATA["databases"]["bugdesk"]
QUERIES = DATABASE["queries"]


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> Path:
    """An empty database at the current schema (every migration applied)."""
    path = tmp_path_factory.mktemp("schema") / "bugdesk.db"
    database = dbmod.open_database(str(path))
    database.connect()
    dbmod.upgrade(database)
    database.close()
    return path


def _columns(path: Path, table: str) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def test_the_metadata_has_a_title_and_a_description():
    assert METADATA["title"] and len(METADATA["description"]) > 40
    assert DATABASE["description"]


def test_every_table_an_analyst_sees_and_every_column_of_it_is_described(schema: Path):
    metadata = serve.build_metadata(schema, json.loads(json.dumps(METADATA)))
    tables = metadata["databases"]["bugdesk"]["tables"]
    visible = [t for t in serve.table_names(schema) if not tables.get(t, {}).get("hidden") and "_fts" not in t]
    assert sorted(visible) == ["agent_runs", "bug_report_dedup", "bug_report_events", "bug_reports", "releases"]
    for table in visible:
        assert tables[table].get("description"), f"describe table {table} in datasette-metadata.json"
        described = tables[table].get("columns", {})
        columns = _columns(schema, table)
        missing = [c for c in columns if not described.get(c)]
        assert not missing, f"describe {table}.{missing} in datasette-metadata.json"
        assert not set(described) - set(columns), f"{table}: descriptions of columns that do not exist"


def test_internal_tables_are_hidden_including_every_sync_table(schema: Path):
    tables = serve.build_metadata(schema, json.loads(json.dumps(METADATA)))["databases"]["bugdesk"]["tables"]
    sync = [t for t in serve.table_names(schema) if t.startswith("sync_")]
    for table in ["api_tokens", "schema_migrations", "bug_reports_fts", *sync]:
        assert tables[table]["hidden"] is True, table
    assert tables["api_tokens"]["allow"] is False


def test_default_facets_and_sorts_name_real_columns(schema: Path):
    tables = DATABASE["tables"]
    assert tables["bug_reports"]["facets"] == ["status", "severity", "category", "component"]
    for name, table in tables.items():
        columns = set(_columns(schema, name))
        for facet in table.get("facets", []):
            assert facet in columns, (name, facet)
        for key in ("sort", "sort_desc", "label_column", "fts_pk"):
            if key in table:
                assert table[key] in columns, (name, key)
    assert tables["bug_reports"]["fts_table"] == "bug_reports_fts"


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_each_canned_query_is_described_read_only_and_declares_its_parameters(schema: Path, name: str):
    query = QUERIES[name]
    assert query["title"] and len(query["description"]) > 30
    assert not query.get("write") and "on_success_message" not in query
    used = set(re.findall(r"(?<!:):([a-z_]+)\b", query["sql"]))
    assert used == set(query.get("params", [])), f"{name}: declare exactly the parameters the SQL uses"
    conn = sqlite3.connect(schema)
    guard.install(conn)  # compiling under the guard proves it neither writes nor reads a secret
    try:
        conn.execute("EXPLAIN " + query["sql"], dict.fromkeys(used, ""))
    finally:
        conn.close()


def test_the_ten_questions_of_the_issue_each_have_a_canned_query():
    assert set(QUERIES) == {
        "open_by_severity_category",
        "sla_breaches",
        "oldest_open",
        "top_duplicate_clusters",
        "time_to_resolve",
        "agent_throughput",
        "regressions_by_release",
        "reports_by_release",
        "trace",
        "recent_events",
    }
    assert QUERIES["reports_by_release"]["params"] == ["release"]
    assert QUERIES["trace"]["params"] == ["trace_id"]
    assert "since" in QUERIES["recent_events"]["params"]


def test_open_means_the_partial_index_predicate_spelled_exactly():
    """SQLite uses the partial indexes only when a query repeats their predicate verbatim."""
    predicate = "status NOT IN ('resolved', 'closed') AND duplicate_of_id IS NULL"
    for name in ("open_by_severity_category", "sla_breaches", "oldest_open"):
        assert predicate in QUERIES[name]["sql"], name
