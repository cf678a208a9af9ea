"""Building the Datasette that serves a bugdesk SQLite database read-only, with the analysts' metadata.

How the file is opened, and why:

- The live database (the API writes it while analysts read) is opened
  **read-only with locking on** (SQLite ``mode=ro``, Datasette's mutable mode
  without ``--nolock``). bugdesk runs SQLite in WAL mode; a reader must see the
  WAL and take its read lock, or it misses recent commits and can read pages a
  checkpoint is rewriting. ``immutable=1`` ignores the WAL altogether (a
  report not yet checkpointed is simply not there), and ``nolock=1`` cannot
  open a WAL database at all: both are wrong for a database in use.
- A snapshot from ``bugdesk export sqlite`` never changes, so it is opened
  **immutable** (``--immutable``): no locks, table counts cached, and the file
  may be downloaded since it holds no secrets.

Either way the guard plugin (``bugdesk.analyst.guard``) refuses writes and
secret reads inside SQLite, and the database is always named ``bugdesk`` so
the metadata applies whatever the file is called.
"""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bugdesk import db as dbmod
from bugdesk.errors import ConfigError, SchemaError

if TYPE_CHECKING:
    from datasette.app import Datasette

DATABASE_NAME = "bugdesk"
METADATA_FILE = "datasette-metadata.json"
# Tables another engineer's sync bookkeeping creates: never for analysts.
HIDDEN_PREFIXES = ("sync_",)

# Suggesting facets runs a query per column of every table page: seconds on a
# million rows, for hints nobody asked for. The default facets stay.
SETTINGS: dict[str, Any] = {"suggest_facets": False}


def metadata_path() -> Path:
    """The top-level datasette-metadata.json in a checkout, or the copy packaged in a wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / METADATA_FILE, here / f"_{METADATA_FILE}"):
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{METADATA_FILE} is missing from this installation")


def sqlite_path(url: str) -> Path:
    """The file behind a SQLite URL; anything else gets the way to a snapshot."""
    url = dbmod.normalize_url(url)
    scheme, _, rest = url.partition("://")
    if not scheme.startswith("sqlite"):
        raise ConfigError(
            "Datasette serves SQLite only; for this database write a snapshot and serve that: "
            "`bugdesk export sqlite bugdesk-snapshot.db` then "
            "`bugdesk --db bugdesk-snapshot.db datasette --immutable`"
        )
    path = rest[1:] if rest.startswith("/") else rest
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        raise ConfigError("Datasette needs a database file, not an in-memory database")
    return Path(path)


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write the file (also used to check it before serving)."""
    if not path.is_file():
        raise ConfigError(f"no database file at {path}: check --db or BUGDESK_DATABASE_URL")
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def table_names(path: Path) -> list[str]:
    with read_only(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


def check_schema(path: Path) -> None:
    """Refuse a file that is not a bugdesk database, or one with pending migrations (FTS may be missing)."""
    from peewee import SqliteDatabase

    if "bug_reports" not in table_names(path):
        raise SchemaError(f"{path} is not a bugdesk database (it has no bug_reports table)")
    ro = SqliteDatabase(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        pending = dbmod.pending_migrations(ro)
    finally:
        ro.close()
    if pending:
        raise SchemaError(
            f"{path} has {len(pending)} pending migration(s) ({', '.join(pending)}); run `bugdesk db upgrade` first",
            pending=pending,
        )


def check_snapshot(path: Path) -> None:
    """Refuse ``--immutable`` for a file that is not a snapshot: a live WAL database, or one holding secrets.

    An immutable database may be downloaded whole, and SQLite reading it as
    immutable ignores its WAL; both are only right for ``bugdesk export sqlite``'s output.
    """
    with read_only(path) as conn:
        wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tokens = conn.execute("SELECT count(*) FROM api_tokens").fetchone()[0]
        claims = conn.execute("SELECT count(*) FROM bug_reports WHERE claim_token_hash IS NOT NULL").fetchone()[0]
    if wal or tokens or claims:
        raise ConfigError(
            f"{path} is a live database (it {'is in WAL mode' if wal else 'holds token hashes'}); "
            "--immutable is for snapshots: write one with `bugdesk export sqlite OUT.db`, or serve this file without it"
        )


def build_metadata(path: Path, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata file, plus a hidden entry for every ``sync_*`` table present in ``path``."""
    metadata = base if base is not None else json.loads(metadata_path().read_text(encoding="utf-8"))
    tables = metadata.setdefault("databases", {}).setdefault(DATABASE_NAME, {}).setdefault("tables", {})
    for name in table_names(path):
        if name.startswith(HIDDEN_PREFIXES):
            tables.setdefault(name, {}).update(hidden=True, description="Internal: sync bookkeeping.")
    return metadata


def register_guard() -> None:
    """Make sure the guard plugin is active (the entry point loads it only when the package is installed)."""
    from datasette.plugins import pm

    from bugdesk.analyst import guard

    if not pm.is_registered(guard):
        pm.register(guard, name="bugdesk.analyst.guard")


def build_datasette(path: Path, *, immutable: bool = False, metadata: dict[str, Any] | None = None) -> Datasette:
    """A Datasette serving ``path`` as the database ``bugdesk``, guarded, with the analysts' metadata."""
    from datasette.app import Datasette
    from datasette.database import Database

    register_guard()
    path = path.resolve()
    ds = Datasette(metadata=metadata or build_metadata(path), settings=dict(SETTINGS))
    # Built empty and filled by hand so the database gets its fixed name, and
    # no scratch in-memory database comes along.
    ds.remove_database("_memory")
    ds.add_database(Database(ds, path=str(path), is_mutable=not immutable), name=DATABASE_NAME)
    return ds


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1); names other than localhost are not trusted."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(ds: Datasette, *, host: str, port: int) -> None:
    """Run ``ds`` on uvicorn until interrupted (as ``datasette serve`` does)."""
    import asyncio

    import uvicorn

    asyncio.run(ds.invoke_startup())
    uvicorn.run(ds.app(), host=host, port=port, log_level="info", lifespan="on", workers=1)
