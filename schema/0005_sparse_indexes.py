"""Index the mostly-empty lookup columns of ``bug_reports`` only where they hold a value.

Assignee, trace id, request id, release, legacy id and idempotency key are NULL on most
reports of one origin or another (an API submission has no legacy id and often no release,
an imported one no idempotency key), and a full index stores an entry for every NULL: one
b-tree write per report per index, each about 2.5 % of a create (docs/benchmarks.md). Every
query on these columns compares them with a value, which implies ``IS NOT NULL``, so both
SQLite and PostgreSQL still use the partial index. Uniqueness is unchanged: NULLs were
never equal to each other. Same names, same columns.

Frozen: later changes come as new numbered scripts, never as edits here.
"""

SPARSE = (
    ("bugreport_assignee_id", "assignee_id", ""),
    ("bugreport_trace_id", "trace_id", ""),
    ("bugreport_request_id", "request_id", ""),
    ("bugreport_release_sha", "release_sha", ""),
    ("bugreport_legacy_id", "legacy_id", "UNIQUE "),
    ("bugreport_idempotency_key", "idempotency_key", "UNIQUE "),
)


def up(migrator, db):
    for name, column, unique in SPARSE:
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
        db.execute_sql(f'CREATE {unique}INDEX "{name}" ON "bug_reports" ("{column}") WHERE "{column}" IS NOT NULL')
