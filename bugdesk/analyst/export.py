"""``bugdesk export sqlite``: a consistent, secret-free SQLite snapshot of a bugdesk database, for Datasette.

The snapshot is built by bugdesk's own migrations (so it has the same tables,
indexes and full-text index as a live SQLite database and every canned query
works on it) and then filled from the source:

- **consistent**: every table is read in one transaction. On SQLite the source
  is attached read-only and copied with ``INSERT … SELECT`` inside a single
  transaction (one WAL snapshot); on PostgreSQL one ``REPEATABLE READ READ
  ONLY`` transaction streams each table through a server-side cursor. A report
  filed mid-export is either wholly in the snapshot or wholly absent.
- **secret-free**: only reports, events, dedup rows, releases and agent runs are
  copied; ``api_tokens`` stays empty and ``claim_token_hash`` is never read.
- **all or nothing**: the file is written beside ``OUT`` under a temporary name
  and renamed into place at the end; a failed export leaves no ``OUT``.

Timestamps from PostgreSQL are written in SQLite's stored form (UTC text,
``YYYY-MM-DD HH:MM:SS.ffffff``), UUIDs as text and booleans as 0/1, so the
snapshot reads exactly like a database bugdesk wrote itself.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bugdesk import db as dbmod
from bugdesk.errors import ConfigError

# Parents before children, though the snapshot is loaded with foreign keys off.
EXPORT_TABLES = ("releases", "bug_reports", "bug_report_events", "bug_report_dedup", "agent_runs")
# Columns never read from the source: they stay NULL in the snapshot.
WITHHELD_COLUMNS: dict[str, frozenset[str]] = {"bug_reports": frozenset({"claim_token_hash"})}
BATCH_ROWS = 5_000
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"

Progress = Callable[[str, int], None]


@dataclass
class ExportResult:
    path: Path
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def export_sqlite(
    source_url: str, out: Path | str, *, force: bool = False, progress: Progress | None = None
) -> ExportResult:
    """Write a snapshot of the database at ``source_url`` to ``out``; returns the rows copied per table."""
    started = time.perf_counter()
    out = Path(out)
    source_url = dbmod.normalize_url(source_url)
    source: Path | str
    if source_url.startswith("sqlite"):
        source = _sqlite_file(source_url)
        if out.exists() and out.resolve() == source.resolve():
            raise ConfigError(f"{out} is the database being exported; write the snapshot to another file")
    elif source_url.startswith("postgres"):
        source = source_url
    else:
        raise ConfigError(f"cannot export from {source_url.split('://', 1)[0]}: use a SQLite or PostgreSQL URL")
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; pass --force to replace it")
    if not out.parent.is_dir():
        raise ConfigError(f"directory {out.parent} does not exist")
    partial = out.with_name(f".{out.name}.partial")
    _remove(partial)
    try:
        counts = _build(partial, source, progress)
        os.replace(partial, out)
    except BaseException:
        _remove(partial)
        raise
    return ExportResult(path=out, counts=counts, seconds=time.perf_counter() - started)


def _build(path: Path, source: Path | str, progress: Progress | None) -> dict[str, int]:
    """Schema by the migrations, rows from ``source`` (a SQLite file or a PostgreSQL URL), then indexes."""
    _create_schema(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A half-written temporary file is thrown away, never recovered: no
        # journal and no fsyncs while loading.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        deferred = _drop_indexes_and_triggers(conn)
        if isinstance(source, Path):
            counts = _copy_from_sqlite(conn, source, progress)
        else:
            counts = _copy_from_postgres(conn, source, progress)
        _rebuild(conn, deferred)
        conn.execute("ANALYZE")
        # One self-contained file (no -wal beside it): it can be copied,
        # downloaded, and opened immutable.
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()
    return counts


def _sqlite_file(url: str) -> Path:
    path = url.split("://", 1)[1]
    path = path[1:] if path.startswith("/") else path
    path = path.split("?", 1)[0]
    if not path or path == ":memory:" or not Path(path).is_file():
        raise ConfigError(f"no SQLite database file at {path or url!r}")
    return Path(path)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _create_schema(path: Path) -> None:
    """The current bugdesk schema, by the migrations: tables, indexes, FTS table and its triggers."""
    target = dbmod.open_database(str(path))
    target.connect()
    try:
        dbmod.upgrade(target)
    finally:
        target.close()


def _drop_indexes_and_triggers(conn: sqlite3.Connection) -> list[str]:
    """Set aside the exported tables' indexes and triggers: building them once, after the load, is ~3x faster.

    Constraint indexes (primary keys, UNIQUE) have no SQL of their own and stay.
    Returns their CREATE statements, indexes first, for ``_rebuild``.
    """
    tables = ", ".join("?" * len(EXPORT_TABLES))
    rows = conn.execute(
        f"SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL "
        f"AND tbl_name IN ({tables}) ORDER BY type = 'trigger', name",
        EXPORT_TABLES,
    ).fetchall()
    for kind, name, _ in rows:
        conn.execute(f'DROP {kind.upper()} "{name}"')
    return [sql for _, _, sql in rows]


def _rebuild(conn: sqlite3.Connection, statements: list[str]) -> None:
    """Fill each full-text index from its table, then put the indexes and triggers back."""
    # Every FTS5 table, whatever its content table or view is called (sqlite-utils' detect_fts knows only tables).
    indexes = conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%USING FTS5%'")
    for (name,) in indexes.fetchall():
        conn.execute(f'INSERT INTO "{name}" ("{name}") VALUES (\'rebuild\')')
    for sql in statements:
        conn.execute(sql)


def _columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    return [row[1] for row in conn.execute(f'PRAGMA "{schema}".table_info("{table}")')]


def _copied_columns(table: str, target: list[str], source: Iterable[str]) -> list[str]:
    """Columns both sides have (the schemas may be a migration apart), secrets left out."""
    present = set(source)
    withheld = WITHHELD_COLUMNS.get(table, frozenset())
    return [c for c in target if c in present and c not in withheld]


def _quoted(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _copy_from_sqlite(conn: sqlite3.Connection, source: Path, progress: Progress | None) -> dict[str, int]:
    conn.execute("ATTACH DATABASE ? AS src", (f"{source.resolve().as_uri()}?mode=ro",))
    counts: dict[str, int] = {}
    try:
        # One transaction over both files: the source is read from one snapshot.
        conn.execute("BEGIN")
        for table in EXPORT_TABLES:
            counts[table] = _copy_sqlite_table(conn, table)
            if progress:
                progress(table, counts[table])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("DETACH DATABASE src")
    return counts


def _copy_sqlite_table(conn: sqlite3.Connection, table: str) -> int:
    columns = _copied_columns(table, _columns(conn, table), _columns(conn, table, "src"))
    cols = _quoted(columns)
    return conn.execute(f'INSERT INTO main."{table}" ({cols}) SELECT {cols} FROM src."{table}"').rowcount


def _postgres_conninfo(url: str) -> str:
    """psycopg takes the URL as is, once peewee's scheme variants (postgres+pool, postgresext) are folded."""
    return "postgresql://" + url.split("://", 1)[1]


def _copy_from_postgres(conn: sqlite3.Connection, url: str, progress: Progress | None) -> dict[str, int]:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigError("exporting from PostgreSQL needs psycopg 3: `uv sync --extra postgres`") from exc
    counts: dict[str, int] = {}
    with psycopg.connect(_postgres_conninfo(url), autocommit=False) as pg:
        # Every table from one snapshot; READ ONLY also makes the intent checkable.
        pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        pg.read_only = True
        conn.execute("BEGIN")
        for table in EXPORT_TABLES:
            counts[table] = _copy_postgres_table(conn, pg, table)
            if progress:
                progress(table, counts[table])
        conn.execute("COMMIT")
        pg.rollback()  # nothing to commit: end the read-only transaction
    return counts


def _copy_postgres_table(conn: sqlite3.Connection, pg: Any, table: str) -> int:
    source_columns = [
        row[0]
        for row in pg.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = %s",
            (table,),
        )
    ]
    columns = _copied_columns(table, _columns(conn, table), source_columns)
    cols = _quoted(columns)
    insert = f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(columns))})'
    copied = 0
    with pg.cursor(name=f"bugdesk_export_{table}") as cursor:
        cursor.itersize = BATCH_ROWS
        cursor.execute(f'SELECT {cols} FROM "{table}"')
        converters = [_converter(column.type_code) for column in cursor.description]
        while rows := cursor.fetchmany(BATCH_ROWS):
            conn.executemany(insert, (_convert(row, converters) for row in rows))
            copied += len(rows)
    return copied


def _sqlite_time(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime(_SQLITE_TIME)


# PostgreSQL type OIDs whose values need SQLite's representation.
_CONVERTERS: dict[int, Callable[[Any], Any]] = {
    1184: _sqlite_time,  # timestamptz
    1114: _sqlite_time,  # timestamp
    2950: str,  # uuid
    16: int,  # bool
}


def _converter(type_code: int) -> Callable[[Any], Any] | None:
    return _CONVERTERS.get(type_code)


def _convert(row: tuple, converters: list[Callable[[Any], Any] | None]) -> tuple:
    return tuple(v if f is None or v is None else f(v) for v, f in zip(row, converters, strict=True))
