"""Opening databases (SQLite or PostgreSQL from a URL) and running the migrations in ``schema/``."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse import db_url
from playhouse.migrations import Runner

from bugdesk.config import Settings
from bugdesk.errors import ConfigError, SchemaError

# The models bind to this proxy; `use()` points it at a real database.
database = DatabaseProxy()

MIGRATION_TABLE = "schema_migrations"

_SQLITE_TYPES = {"UTCDATETIME": "DATETIME", "UUID": "TEXT"}
_POSTGRES_TYPES = {"UTCDATETIME": "TIMESTAMPTZ", "UUID": "UUID"}


def normalize_url(url: str) -> str:
    """A bare path means a SQLite file, so ``--db demo.db`` works."""
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


def open_database(url: str, settings: Settings | None = None) -> Database:
    """A peewee Database for ``url`` with bugdesk's connection settings (not yet connected)."""
    settings = settings or Settings()
    url = normalize_url(url)
    scheme = url.split("://", 1)[0]
    if scheme.startswith("sqlite"):
        # A pool holds several connections, each with a cache of its own (see Settings.sqlite_pool_size).
        cache_mb = settings.sqlite_pool_cache_mb if "+pool" in scheme else settings.sqlite_cache_mb
        pragmas = {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": settings.sqlite_busy_timeout_ms,
            "synchronous": "normal",
            "cache_size": -cache_mb * 1024,  # negative: KiB rather than pages
            "wal_autocheckpoint": 8192,
        }
        # Every transaction takes the write lock up front: a deferred one that
        # upgrades later can fail with SQLITE_BUSY without honouring the timeout.
        return db_url.connect(
            url,
            pragmas=pragmas,
            lock_type="IMMEDIATE",
            timeout=settings.sqlite_busy_timeout_ms / 1000,
            field_types=_SQLITE_TYPES,
        )
    if scheme.startswith("postgres"):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                "PostgreSQL needs psycopg 3: install with `uv sync --extra postgres` "
                "or `pip install 'bugdesk[postgres]'`"
            ) from exc
        return db_url.connect(url, field_types=_POSTGRES_TYPES)
    raise ConfigError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///PATH, a file path, "
        "or postgresql://USER@HOST:PORT/DBNAME"
    )


def pool_size(settings: Settings) -> int:
    """How many connections a pool for ``settings.database_url`` may hold (see `Settings.sqlite_pool_size`)."""
    if normalize_url(settings.database_url).startswith("sqlite"):
        return settings.sqlite_pool_size
    return settings.database_pool_size


def use(db: Database) -> Database:
    """Point the models at ``db``."""
    database.initialize(db)
    return db


class WriteLock:
    """A lock file that the server's worker processes take around each write transaction on one SQLite file.

    Without it, a worker that finds the database locked by another worker sleeps in SQLite's
    busy handler (1, 2, 5, 10 ... ms between tries) although the lock is free again within a
    millisecond: two workers then wrote no faster than one. A blocked ``flock`` wakes as soon as
    the holder lets go. It only orders writers that take it; every other writer (the CLI, the
    TUI, a sync) still waits in the busy handler, and SQLite's own lock stays what guarantees
    one writer at a time.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._mutex = threading.RLock()  # flock is per open file, so the threads of a process need their own lock
        self._local = threading.local()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._mutex:
            depth = getattr(self._local, "depth", 0)
            if depth == 0:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth = depth
                if depth == 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


_write_lock: WriteLock | None = None


@contextlib.contextmanager
def shared_write_lock(db: Database) -> Iterator[WriteLock | None]:
    """For a server's lifetime: order the write transactions of its processes on a SQLite file (see `WriteLock`)."""
    global _write_lock
    path = getattr(db, "database", "") if is_sqlite(db) else ""
    if not path or path == ":memory:" or path.startswith("file:") or _write_lock is not None:
        # (A second app in this process, as in tests, shares the first one's lock and leaves it open.)
        yield _write_lock
        return
    _write_lock = WriteLock(f"{path}-writers.lock")
    try:
        yield _write_lock
    finally:
        lock, _write_lock = _write_lock, None
        lock.close()


def write_lock() -> WriteLock | None:
    """The lock `shared_write_lock` installed in this process, if any."""
    return _write_lock


def is_sqlite(db: Database | None = None) -> bool:
    db = db if db is not None else database.obj
    return isinstance(db, SqliteDatabase)


def is_postgres(db: Database | None = None) -> bool:
    db = db if db is not None else database.obj
    return isinstance(db, PostgresqlDatabase)


def schema_dir() -> Path:
    """``schema/`` beside the package in a checkout, ``bugdesk/_schema`` in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schema", here / "_schema"):
        if candidate.is_dir():
            return candidate
    raise SchemaError("the migration scripts (schema/) are missing from this installation")


def _runner(db: Database) -> Runner:
    return Runner(db, str(schema_dir()), table_name=MIGRATION_TABLE)


def migration_status(db: Database) -> list[tuple[str, bool]]:
    """(name, applied) for every migration script, in order."""
    return [(m.name, m.applied is not None) for m in _runner(db).status() if m.path]


def pending_migrations(db: Database) -> list[str]:
    return [name for name, applied in migration_status(db) if not applied]


# pg_advisory_lock key of `upgrade` ("bugdesk" in ASCII): any 64-bit number other tools are unlikely to take.
_UPGRADE_LOCK = 0x6275676465736B


def upgrade(db: Database) -> list[str]:
    """Apply pending migrations; returns their names (empty when up to date).

    On PostgreSQL, hosts starting together on an empty database (or two operators) would
    both apply the same scripts: an advisory lock makes the second wait, then find nothing
    pending.
    """
    if not is_postgres(db):
        from bugdesk import deferred

        # Indexes a bulk load set aside come back first: the scripts may rely on them.
        deferred.restore(db)
        return _runner(db).up()
    db.execute_sql("SELECT pg_advisory_lock(%s)", [_UPGRADE_LOCK])
    try:
        return _runner(db).up()
    finally:
        db.execute_sql("SELECT pg_advisory_unlock(%s)", [_UPGRADE_LOCK])


def ensure_schema(db: Database, *, auto_upgrade_empty: bool = True, restore_deferred: bool = True) -> None:
    """Refuse to work on an out-of-date schema.

    A brand-new database (no tables at all) is created on the spot, since that
    is what anyone running bugdesk for the first time expects. A database that
    already holds data is never migrated behind the operator's back.
    """
    pending = pending_migrations(db)
    if not pending:
        if restore_deferred:
            from bugdesk import deferred

            deferred.restore(db, orphaned_only=True)
        return
    if auto_upgrade_empty and not db.get_tables():
        upgrade(db)
        return
    raise SchemaError(
        f"the database has {len(pending)} pending migration(s) ({', '.join(pending)}); run `bugdesk db upgrade` first",
        pending=pending,
    )


@contextlib.contextmanager
def connected(
    url: str, settings: Settings | None = None, *, check_schema: bool = True, restore_deferred: bool = True
) -> Iterator[Database]:
    """Open, bind the models, check the schema, and close again at the end."""
    db = use(open_database(url, settings))
    db.connect(reuse_if_open=True)
    try:
        if check_schema:
            ensure_schema(db, restore_deferred=restore_deferred)
        yield db
    finally:
        if not db.is_closed():
            db.close()
