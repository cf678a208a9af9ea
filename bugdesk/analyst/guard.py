"""A Datasette plugin that has SQLite itself refuse writes and withhold secrets on every connection Datasette opens.

Hiding a table in Datasette's metadata only takes it off the lists: any SQL
query can still read it. So the promise "token hashes are never readable and
nothing can be written" is kept below Datasette, by an SQLite authorizer that
SQLite consults while compiling every statement, whatever route it came by:
arbitrary SQL, canned queries, table pages, facets, ``_where=``, full-text
search, or a writable canned query someone might add to the metadata later.

- every read of ``api_tokens`` is refused (names, scopes and hashes);
- ``bug_reports.claim_token_hash`` reads as NULL, so ``select *`` still works;
- raw page access (``sqlite_dbpage``) is refused;
- every write is refused: INSERT, UPDATE, DELETE (also behind ``WITH``), DDL,
  ATTACH/DETACH, ANALYZE, REINDEX, and PRAGMAs that set a value.

It is registered by ``bugdesk datasette`` and, through the ``datasette`` entry
point in pyproject.toml, in any Datasette run from bugdesk's environment. The
Datasette-owned ``_internal`` database is left alone (Datasette writes its own
catalogue there). The module imports only pluggy, so the tests and the export
can use ``authorize`` without loading Datasette.
"""

from __future__ import annotations

import sqlite3

import pluggy

hookimpl = pluggy.HookimplMarker("datasette")

# Tables no statement may read at all.
DENIED_TABLES = frozenset({"api_tokens", "sqlite_dbpage"})
# Columns that read as NULL: the row stays visible, the secret does not.
WITHHELD_COLUMNS = frozenset({("bug_reports", "claim_token_hash")})
# PRAGMAs that take an argument yet only read (table_info(x) and the like).
READ_ONLY_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_info",
        "index_xinfo",
        "index_list",
        "foreign_key_list",
        "foreign_key_check",
        "integrity_check",
        "quick_check",
    }
)
# Functions that reach outside the database; SQLite disables both by default.
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
# SQLite marks its own schema as updated while loading it: allowed, because no
# statement can update these tables anyway without writable_schema, a PRAGMA
# this guard refuses.
_SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})

_WRITES = frozenset(
    getattr(sqlite3, name)
    for name in (
        "SQLITE_INSERT",
        "SQLITE_UPDATE",
        "SQLITE_DELETE",
        "SQLITE_ALTER_TABLE",
        "SQLITE_ANALYZE",
        "SQLITE_ATTACH",
        "SQLITE_DETACH",
        "SQLITE_REINDEX",
        "SQLITE_CREATE_INDEX",
        "SQLITE_CREATE_TABLE",
        "SQLITE_CREATE_TEMP_INDEX",
        "SQLITE_CREATE_TEMP_TABLE",
        "SQLITE_CREATE_TEMP_TRIGGER",
        "SQLITE_CREATE_TEMP_VIEW",
        "SQLITE_CREATE_TRIGGER",
        "SQLITE_CREATE_VIEW",
        "SQLITE_CREATE_VTABLE",
        "SQLITE_DROP_INDEX",
        "SQLITE_DROP_TABLE",
        "SQLITE_DROP_TEMP_INDEX",
        "SQLITE_DROP_TEMP_TABLE",
        "SQLITE_DROP_TEMP_TRIGGER",
        "SQLITE_DROP_TEMP_VIEW",
        "SQLITE_DROP_TRIGGER",
        "SQLITE_DROP_VIEW",
        "SQLITE_DROP_VTABLE",
    )
)


def authorize(action: int, arg1: str | None, arg2: str | None, db_name: str | None, source: str | None) -> int:
    """The SQLite authorizer callback (see ``sqlite3.Connection.set_authorizer``)."""
    if action == sqlite3.SQLITE_READ:
        if arg1 in DENIED_TABLES:
            return sqlite3.SQLITE_DENY
        if (arg1, arg2) in WITHHELD_COLUMNS:
            return sqlite3.SQLITE_IGNORE
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and arg1 in _SCHEMA_TABLES:
        return sqlite3.SQLITE_OK
    if action in _WRITES:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA:
        # arg1 is the pragma, arg2 its argument: none means a read.
        if arg2 is None or (arg1 or "").lower() in READ_ONLY_PRAGMAS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def install(conn: sqlite3.Connection) -> None:
    """Guard ``conn``: every statement it compiles from now on is checked by ``authorize``."""
    conn.set_authorizer(authorize)


@hookimpl
def prepare_connection(conn: sqlite3.Connection, database: str) -> None:
    """Datasette calls this for each connection it opens, the read and the write ones alike."""
    if database != "_internal":
        install(conn)
