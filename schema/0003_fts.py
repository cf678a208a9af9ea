"""Full-text search on title, description and stack trace, and the indexes the analysts' queries need.

SQLite gets an FTS5 index, ``bug_reports_fts``, that Datasette's search box and
``_search=`` use, kept in sync by triggers. PostgreSQL gets the equivalent GIN
index over a ``tsvector`` expression (Datasette never serves PostgreSQL; the
API's ``q=`` filter can use it there by repeating ``SEARCH_DOCUMENT_PG``).

Frozen: later changes come as new numbered scripts, never as edits here.
"""

from peewee import PostgresqlDatabase
from sqlite_utils import Database

FTS_TABLE = "bug_reports_fts"

# External content: the text lives once, in bug_reports. The FTS rowid is the
# report's short `number`, not bug_reports' implicit rowid: a table without an
# INTEGER PRIMARY KEY may have its rowids renumbered by VACUUM, which would
# silently point every search hit at the wrong report. Datasette is told to
# join on `number` by `fts_pk` in datasette-metadata.json. unicode61 splits
# identifiers on `_` and `.`, so `compute_total` in a stack frame is found by
# "compute_total" (a phrase) and by "compute"; phrases need detail=full, the
# default. columnsize=0 skips a per-row size table only bm25 ranking reads
# (nothing here ranks): one b-tree write less per report created.
FTS_DDL = (
    f"CREATE VIRTUAL TABLE [{FTS_TABLE}] USING FTS5 ("
    "title, description, stacktrace, content=[bug_reports], content_rowid=[number], "
    "tokenize='unicode61 remove_diacritics 2', columnsize=0)"
)

# The trigger names and bracket quoting are sqlite-utils' own (enable_fts), so
# `sqlite-utils disable-fts` and `Table.disable_fts()` recognise them. Unlike
# sqlite-utils' update trigger, ours fires only when an indexed column is in the
# UPDATE's SET list: claims, heartbeats and triage update reports constantly and
# must not re-tokenise a stack trace each time (bugdesk's updates set only the
# columns that change).
_OLD = "old.[number], old.[title], old.[description], old.[stacktrace]"
_NEW = "new.[number], new.[title], new.[description], new.[stacktrace]"
_COLS = "rowid, [title], [description], [stacktrace]"
FTS_TRIGGERS = (
    f"CREATE TRIGGER [bug_reports_ai] AFTER INSERT ON [bug_reports] BEGIN "
    f"INSERT INTO [{FTS_TABLE}] ({_COLS}) VALUES ({_NEW}); END",
    f"CREATE TRIGGER [bug_reports_ad] AFTER DELETE ON [bug_reports] BEGIN "
    f"INSERT INTO [{FTS_TABLE}] ([{FTS_TABLE}], {_COLS}) VALUES ('delete', {_OLD}); END",
    f"CREATE TRIGGER [bug_reports_au] AFTER UPDATE OF [number], [title], [description], [stacktrace] "
    f"ON [bug_reports] BEGIN "
    f"INSERT INTO [{FTS_TABLE}] ([{FTS_TABLE}], {_COLS}) VALUES ('delete', {_OLD}); "
    f"INSERT INTO [{FTS_TABLE}] ({_COLS}) VALUES ({_NEW}); END",
)

# Analyst indexes (SQLite only: Datasette serves SQLite, and `bugdesk export
# sqlite` builds a snapshot through these same migrations). Each keeps a canned
# query of datasette-metadata.json, or a default facet or sort, under its budget
# at 1M reports (figures in docs/benchmarks.md). Every index costs the create
# path a page write per transaction (measured: ~2.5% of a create each), so the
# set is the smallest that meets the budgets: the queries on open reports use
# 0001's partial indexes, and the partial ones below stay out of the create path.
SQLITE_INDEXES = (
    # time_to_resolve: a range of resolution times, covering the grouped columns;
    # a report enters it only when resolved.
    "CREATE INDEX ix_bug_reports_resolved ON bug_reports (resolved_at, severity, category, created_at) "
    "WHERE resolved_at IS NOT NULL AND duplicate_of_id IS NULL",
    # Default facets of the bug_reports table page: without them each count is a
    # full scan. Status comes second so a page filtered by status (the commonest
    # filter) counts from the index too; status x severity is 0001's
    # ix_bug_reports_status_severity_sla.
    "CREATE INDEX ix_bug_reports_severity ON bug_reports (severity)",
    "CREATE INDEX ix_bug_reports_category ON bug_reports (category, status)",
    "CREATE INDEX ix_bug_reports_component ON bug_reports (component, status)",
    # regressions_by_release: the few regressed events among millions.
    "CREATE INDEX ix_bug_report_events_regressed ON bug_report_events (created_at) WHERE kind = 'regressed'",
    # top_duplicate_clusters: sums occurrences per canonical from the index alone.
    "CREATE INDEX ix_bug_report_dedup_cluster ON bug_report_dedup "
    "(canonical_id, occurrences, first_seen_at, last_seen_at)",
    # The agent_runs page: its default sort and facet (runs are few next to reports).
    "CREATE INDEX ix_agent_runs_started ON agent_runs (started_at)",
    "CREATE INDEX ix_agent_runs_outcome ON agent_runs (outcome)",
)

# PostgreSQL: the same three columns as one document. A tsvector holds at most
# 1 MiB and an index expression that errors refuses the INSERT (descriptions may
# be 8 MiB), so each long field is capped: 30,000 characters each stay under the
# limit even in 4-byte characters, and the stack trace comes before the
# description so a long description cannot push it out. 'simple' does no
# stemming, like SQLite's unicode61.
SEARCH_DOCUMENT_PG = (
    "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || left(coalesce(stacktrace, ''), 30000) "
    "|| ' ' || left(coalesce(description, ''), 30000))"
)


def up(migrator, db):
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(f"CREATE INDEX ix_bug_reports_search ON bug_reports USING GIN (({SEARCH_DOCUMENT_PG}))")
        return
    db.execute_sql(FTS_DDL)
    for sql in FTS_TRIGGERS:
        db.execute_sql(sql)
    # sqlite-utils nests its work in a SAVEPOINT inside the migration's
    # transaction. Options off: they would change peewee's shared connection.
    Database(db.connection(), recursive_triggers=False, execute_plugins=False)[FTS_TABLE].rebuild_fts()
    for sql in SQLITE_INDEXES:
        db.execute_sql(sql)
    # Where the database was analysed before, the new indexes need statistics
    # too, or the planner weighs them against measured ones with guesses. A
    # database never analysed stays that way (stats of an empty table mislead).
    if db.execute_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        for sql in SQLITE_INDEXES:
            db.execute_sql(f"ANALYZE {sql.split()[2]}")
