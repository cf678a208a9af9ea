"""Where a bulk load records the indexes and triggers it set aside (``bugdesk.deferred``).

A load into SQLite drops the secondary indexes and full-text triggers of the tables it fills
and builds them once at the end. Each dropped object's ``CREATE`` statement is written here in
the same transaction as the ``DROP``, with the process that holds it, so a load that is killed
leaves the database knowing what to rebuild and whether anyone is still loading.

PostgreSQL gets the table too (one schema for both); nothing defers there yet.
Frozen: later changes come as new numbered scripts, never as edits here.
"""

from peewee import PostgresqlDatabase


def up(migrator, db):
    stamp = "TIMESTAMPTZ" if isinstance(db, PostgresqlDatabase) else "DATETIME"
    db.execute_sql(
        "CREATE TABLE deferred_ddl ("
        "name TEXT NOT NULL PRIMARY KEY, "
        "kind TEXT NOT NULL, "  # index, trigger, or rebuild (an FTS5 table to rebuild once its triggers are back)
        "table_name TEXT NOT NULL, "
        "sql TEXT NOT NULL, "
        "owner_host TEXT NOT NULL, "
        "owner_pid INTEGER NOT NULL, "
        f"deferred_at {stamp} NOT NULL)"
    )
