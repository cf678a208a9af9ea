"""Deferred index maintenance: a bulk load into SQLite sets secondary indexes aside and builds them once at the end.

Keeping twenty secondary indexes and an FTS5 index up to date row by row is most of what a
legacy import costs its writer; building each once over the loaded table is several times
cheaper (docs/benchmarks.md, issue 6). :func:`defer` drops them and records each ``CREATE``
statement in ``deferred_ddl`` (schema 0006) in the same transaction, so a killed load leaves
the database knowing what to rebuild. :func:`restore` builds them again. The loader restores
when it ends, however it ends; after a crash the next command that opens the database
restores what no live process holds (``bugdesk.db.ensure_schema``), and ``bugdesk db
upgrade`` restores whatever is recorded.

Correctness never depends on what is deferred: unique indexes (legacy ids, numbers,
idempotency keys) are never dropped, so other writers keep every guarantee while a load
runs. They only run slower, and full-text search does not find rows written meanwhile until
the rebuild, which re-reads every row.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from peewee import Database

log = logging.getLogger("bugdesk.deferred")

TABLE = "deferred_ddl"
# What a bulk load fills.
LOAD_TABLES = ("bug_reports", "bug_report_events")
# What the loader itself looks up while the rest is set aside: a changed legacy report's history.
KEEP = frozenset({"bugreportevent_report_id_created_at"})
REBUILD = "rebuild"


@dataclass(frozen=True, slots=True)
class Deferred:
    """One object set aside, and who holds it."""

    name: str
    kind: str
    table_name: str
    sql: str
    owner_host: str
    owner_pid: int

    @property
    def owner_alive(self) -> bool:
        """Whether the process that set it aside still runs (another host's cannot be checked: assumed so)."""
        if self.owner_host != _host():
            return True
        if self.owner_pid == os.getpid():
            return True
        try:
            os.kill(self.owner_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _host() -> str:
    return socket.gethostname()[:255]


def supported(db: Database) -> bool:
    """Only SQLite defers: PostgreSQL's index upkeep per row is not what limits a load there."""
    from bugdesk.db import is_sqlite

    return is_sqlite(db) and TABLE in db.get_tables()


def recorded(db: Database) -> list[Deferred]:
    """What is set aside now (empty on a database without the table)."""
    if TABLE not in db.get_tables():
        return []
    cursor = db.execute_sql(f"SELECT name, kind, table_name, sql, owner_host, owner_pid FROM {TABLE} ORDER BY name")
    return [Deferred(*row) for row in cursor.fetchall()]


def defer(db: Database, tables: Iterable[str] = LOAD_TABLES) -> list[str]:
    """Drop the non-unique indexes and the triggers of ``tables``, recording them as held by this process.

    Objects already recorded by another (perhaps dead) load are taken over. Returns the names
    dropped now. A no-op where deferring is not supported.
    """
    if not supported(db):
        return []
    tables = tuple(tables)
    marks = ", ".join("?" * len(tables))
    now = datetime.now(UTC).isoformat()
    dropped: list[str] = []
    with db.atomic():
        objects = db.execute_sql(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            f"WHERE type IN ('index', 'trigger') AND sql IS NOT NULL AND tbl_name IN ({marks}) ORDER BY name",
            tables,
        ).fetchall()
        fts_tables = [
            name
            for (name,) in db.execute_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%USING FTS5%'"
            ).fetchall()
        ]
        for kind, name, table, sql in objects:
            if name in KEEP or (kind == "index" and sql.lstrip().upper().startswith("CREATE UNIQUE")):
                continue
            _record(db, name, kind, table, sql, now)
            if kind == "trigger":
                # The triggers keep an FTS5 index in step; without them it must be rebuilt from its content.
                for fts in fts_tables:
                    if re.search(rf"\b{re.escape(fts)}\b", sql):
                        rebuild = f"INSERT INTO [{fts}] ([{fts}]) VALUES ('rebuild')"
                        _record(db, f"{fts}:{REBUILD}", REBUILD, fts, rebuild, now)
            db.execute_sql(f'DROP {kind.upper()} "{name}"')
            dropped.append(name)
        db.execute_sql(f"UPDATE {TABLE} SET owner_host = ?, owner_pid = ?", [_host(), os.getpid()])
    if dropped:
        log.info("deferred %d indexes and triggers for a bulk load", len(dropped))
    return dropped


def _record(db: Database, name: str, kind: str, table: str, sql: str, now: str) -> None:
    db.execute_sql(
        f"INSERT INTO {TABLE} (name, kind, table_name, sql, owner_host, owner_pid, deferred_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        [name, kind, table, sql, _host(), os.getpid(), now],
    )


def restore(db: Database, *, orphaned_only: bool = False) -> list[str]:
    """Build again everything recorded (indexes, then triggers, then FTS5 rebuilds) in one transaction.

    With ``orphaned_only`` nothing happens while a live process holds the objects (its load
    restores them itself). Returns the names restored.
    """
    held = recorded(db)
    if not held or (orphaned_only and any(d.owner_alive for d in held)):
        return []
    started = time.perf_counter()
    order = {"index": 0, "trigger": 1, REBUILD: 2}
    # CREATE INDEX sorts every row; SQLite's sorter may use helper threads for that.
    threads = db.execute_sql("PRAGMA threads").fetchone()[0]
    db.execute_sql(f"PRAGMA threads = {max(threads, min(4, os.cpu_count() or 1))}")
    with db.atomic():
        held = recorded(db)  # again, inside the write lock: another process may have restored meanwhile
        present = {name for (name,) in db.execute_sql("SELECT name FROM sqlite_master").fetchall()}
        for item in sorted(held, key=lambda d: (order.get(d.kind, 3), d.name)):
            if item.kind == REBUILD or item.name not in present:
                db.execute_sql(item.sql)
        db.execute_sql(f"DELETE FROM {TABLE}")
    db.execute_sql(f"PRAGMA threads = {threads}")
    if held:
        log.info("rebuilt %d deferred indexes and triggers in %.1f s", len(held), time.perf_counter() - started)
    return [d.name for d in held]
