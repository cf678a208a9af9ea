"""Opening databases and running migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from peewee import IntegrityError

from bugdesk import db as dbmod
from bugdesk.config import Settings
from bugdesk.errors import ConfigError, SchemaError


def test_upgrading_twice_is_a_no_op_the_second_time(tmp_path):
    database = dbmod.open_database(str(tmp_path / "fresh.db"))
    database.connect()
    scripts = sorted(p.stem for p in dbmod.schema_dir().glob("[0-9]*.py"))
    assert scripts[0] == "0001_initial"
    assert dbmod.pending_migrations(database) == scripts
    assert dbmod.upgrade(database) == scripts
    assert dbmod.upgrade(database) == []
    assert dbmod.pending_migrations(database) == []
    assert "bug_reports" in database.get_tables()


def test_the_same_migrations_apply_to_postgres(db_url):
    database = dbmod.open_database(db_url)
    database.connect()
    assert dbmod.pending_migrations(database) == []
    assert {"bug_reports", "bug_report_events", "bug_report_dedup", "agent_runs", "api_tokens", "releases"} <= set(
        database.get_tables()
    )
    assert dbmod.upgrade(database) == []
    database.close()


def test_a_brand_new_database_is_created_on_first_use(tmp_path):
    with dbmod.connected(str(tmp_path / "new.db")) as database:
        assert dbmod.pending_migrations(database) == []


def test_a_database_with_data_and_pending_migrations_is_refused_with_the_fix(tmp_path):
    database = dbmod.open_database(str(tmp_path / "old.db"))
    database.connect()
    database.execute_sql("CREATE TABLE something_else (id INTEGER)")
    with pytest.raises(SchemaError) as info:
        dbmod.ensure_schema(database)
    assert "bugdesk db upgrade" in str(info.value)


def test_sqlite_is_opened_with_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    database = dbmod.open_database(str(tmp_path / "p.db"), Settings(sqlite_busy_timeout_ms=1234))
    database.connect()
    assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert database.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert database.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 1234
    assert database.execute_sql("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_single_connection_gets_the_large_cache_and_a_pooled_one_the_small_one(tmp_path):
    # A pool holds several connections, each filling a cache of its own: what bounds an API worker's memory.
    settings = Settings(sqlite_cache_mb=48, sqlite_pool_cache_mb=3)
    single = dbmod.open_database(str(tmp_path / "c.db"), settings)
    pooled = dbmod.open_database(f"sqlite+pool:///{tmp_path / 'c.db'}?max_connections=2", settings)
    for database, kib in ((single, 48 * 1024), (pooled, 3 * 1024)):
        with database.connection_context():
            assert database.execute_sql("PRAGMA cache_size").fetchone()[0] == -kib
    pooled.close_all()


def test_a_pool_holds_few_connections_on_sqlite_and_more_on_postgres():
    sqlite = Settings(database_url="demo.db", sqlite_pool_size=5, database_pool_size=40)
    postgres = Settings(database_url="postgresql://u@h/db", sqlite_pool_size=5, database_pool_size=40)
    assert (dbmod.pool_size(sqlite), dbmod.pool_size(postgres)) == (5, 40)


def test_an_unknown_url_scheme_says_what_is_supported():
    with pytest.raises(ConfigError) as info:
        dbmod.open_database("mongodb://localhost/x")
    assert "postgresql://" in str(info.value) and "sqlite:///" in str(info.value)


def test_foreign_keys_cascade_events_with_their_report(db, make_report):
    from bugdesk.models import BugReport, BugReportEvent

    report = make_report()
    assert BugReportEvent.select().where(BugReportEvent.report == report.id).count() == 1
    BugReport.delete().where(BugReport.id == report.id).execute()
    assert BugReportEvent.select().where(BugReportEvent.report == report.id).count() == 0


SPARSE_COLUMNS = ["trace_id", "request_id", "release_sha", "assignee_id", "legacy_id", "idempotency_key"]


@pytest.mark.parametrize("column", SPARSE_COLUMNS)
def test_a_lookup_by_a_sparse_column_uses_its_partial_index(db, column):
    """0005 indexes these columns only where not NULL; a comparison with a value must still use the index."""
    if dbmod.is_sqlite(db):
        plan = str(
            db.execute_sql(f"EXPLAIN QUERY PLAN SELECT id FROM bug_reports WHERE {column} = ?", ["x"]).fetchall()
        )
    else:
        db.execute_sql("SET enable_seqscan = off")
        plan = str(db.execute_sql(f"EXPLAIN SELECT id FROM bug_reports WHERE {column} = %s", ["x"]).fetchall())
        db.execute_sql("SET enable_seqscan = on")
    assert f"bugreport_{column}" in plan


def test_sparse_unique_columns_still_refuse_a_second_value_but_take_many_nulls(db, make_report):
    make_report(legacy_id="legacy-1")
    make_report()
    make_report()
    with pytest.raises(IntegrityError), db.atomic():
        db.execute_sql(
            "UPDATE bug_reports SET legacy_id = 'legacy-1' WHERE legacy_id IS NULL AND number = "
            "(SELECT MIN(number) FROM bug_reports WHERE legacy_id IS NULL)"
        )


def test_hosts_upgrading_one_postgres_database_at_once_apply_each_migration_once(postgres_url):
    """Several hosts starting on an empty database all call upgrade; the advisory lock serialises them."""
    import threading
    import uuid

    from tests.conftest import ADMIN_URL, _admin_execute

    name = f"bugdesk_upgrade_{uuid.uuid4().hex[:8]}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    applied, errors = [], []

    def host() -> None:
        db = dbmod.open_database(url)
        db.connect()
        try:
            applied.extend(dbmod.upgrade(db))
        except Exception as exc:  # a race would surface as "relation already exists"
            errors.append(exc)
        finally:
            db.close()

    try:
        threads = [threading.Thread(target=host) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert sorted(applied) == sorted({name for name in applied}) and applied
        db = dbmod.open_database(url)
        db.connect()
        assert dbmod.pending_migrations(db) == []
        db.close()
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_writers_lock_file_excludes_other_processes_and_is_reentrant_in_one_thread(tmp_path):
    import subprocess
    import sys

    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n"
    )
    lock = dbmod.WriteLock(str(tmp_path / "db.sqlite-writers.lock"))
    try:
        with lock.held(), lock.held():  # a savepoint inside a transaction takes it again
            held = subprocess.run([sys.executable, "-c", probe, lock.path], timeout=30)
        free = subprocess.run([sys.executable, "-c", probe, lock.path], timeout=30)
    finally:
        lock.close()
    assert held.returncode == 3 and free.returncode == 0
