"""Full-text search indexes a duplicate's title and description, but not its stack trace.

A duplicate's stack trace is the one its fingerprint was taken from: the same exception
type and innermost in-app frames as its canonical's, whose trace is indexed. A search on a
trace finds the canonical, and the canonical lists its duplicates. Tokenising a few KB of
trace was most of the FTS5 cost of a create, and most reports are duplicates (measured in
docs/benchmarks.md, issue 3). Titles and descriptions, the words a reporter typed, stay
searchable on every report.

The FTS5 table now reads its content from the view ``bug_reports_search``, which applies
that rule, so the triggers and FTS5's own ``rebuild`` and ``integrity-check`` agree on what
is indexed: an external-content index that is told to delete other values than it indexed
is corrupt. A merge or split changes ``duplicate_of_id``, so the update trigger watches it.

PostgreSQL is unchanged: its GIN expression index costs nothing comparable per insert.
Frozen: later changes come as new numbered scripts, never as edits here.
"""

from peewee import PostgresqlDatabase

FTS_TABLE = "bug_reports_fts"
VIEW = "bug_reports_search"

VIEW_DDL = (
    f"CREATE VIEW [{VIEW}] AS SELECT number, title, description, "
    "CASE WHEN duplicate_of_id IS NULL THEN stacktrace END AS stacktrace FROM bug_reports"
)
FTS_DDL = (
    f"CREATE VIRTUAL TABLE [{FTS_TABLE}] USING FTS5 ("
    f"title, description, stacktrace, content=[{VIEW}], content_rowid=[number], "
    "tokenize='unicode61 remove_diacritics 2', columnsize=0)"
)


def _values(row: str) -> str:
    return (
        f"{row}.[number], {row}.[title], {row}.[description], "
        f"CASE WHEN {row}.[duplicate_of_id] IS NULL THEN {row}.[stacktrace] END"
    )


_COLS = "rowid, [title], [description], [stacktrace]"
TRIGGERS = (
    f"CREATE TRIGGER [bug_reports_ai] AFTER INSERT ON [bug_reports] BEGIN "
    f"INSERT INTO [{FTS_TABLE}] ({_COLS}) VALUES ({_values('new')}); END",
    f"CREATE TRIGGER [bug_reports_ad] AFTER DELETE ON [bug_reports] BEGIN "
    f"INSERT INTO [{FTS_TABLE}] ([{FTS_TABLE}], {_COLS}) VALUES ('delete', {_values('old')}); END",
    f"CREATE TRIGGER [bug_reports_au] AFTER UPDATE OF [number], [title], [description], [stacktrace], "
    f"[duplicate_of_id] ON [bug_reports] BEGIN "
    f"INSERT INTO [{FTS_TABLE}] ([{FTS_TABLE}], {_COLS}) VALUES ('delete', {_values('old')}); "
    f"INSERT INTO [{FTS_TABLE}] ({_COLS}) VALUES ({_values('new')}); END",
)


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        return
    for trigger in ("bug_reports_ai", "bug_reports_ad", "bug_reports_au"):
        db.execute_sql(f"DROP TRIGGER IF EXISTS [{trigger}]")
    db.execute_sql(f"DROP TABLE IF EXISTS [{FTS_TABLE}]")
    db.execute_sql(VIEW_DDL)
    db.execute_sql(FTS_DDL)
    for sql in TRIGGERS:
        db.execute_sql(sql)
    db.execute_sql(f"INSERT INTO [{FTS_TABLE}] ([{FTS_TABLE}]) VALUES ('rebuild')")
