"""The initial schema: reports, events, dedup groups, agent runs, API tokens and releases.

Frozen copy of the models as they were when this migration was written; later
changes come as new numbered scripts, never as edits here.
"""

import uuid

from peewee import (
    AutoField,
    BigAutoField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    Model,
    PostgresqlDatabase,
    TextField,
)

from bugdesk.fields import JSONField, UTCDateTimeField, UUIDField

# Partial indexes: the open queue is a small slice of a large table, and these
# keep claim-next and "open by SLA" at index-seek cost. The predicates must be
# written the same way the queries in bugdesk/queries.py write them.
PARTIAL_INDEXES = (
    "CREATE INDEX ix_bug_reports_queue ON bug_reports (severity, sla_due_at, number) "
    "WHERE status IN ('new', 'triaged') AND duplicate_of_id IS NULL",
    "CREATE INDEX ix_bug_reports_open ON bug_reports (severity, sla_due_at, number) "
    "WHERE status NOT IN ('resolved', 'closed') AND duplicate_of_id IS NULL",
    "CREATE INDEX ix_bug_reports_open_created ON bug_reports (created_at) "
    "WHERE status NOT IN ('resolved', 'closed') AND duplicate_of_id IS NULL",
    "CREATE INDEX ix_bug_reports_claims ON bug_reports (claim_expires_at) WHERE claimed_by IS NOT NULL",
    "CREATE INDEX ix_bug_reports_status_severity_sla ON bug_reports (status, severity, sla_due_at)",
    "CREATE INDEX ix_bug_reports_duplicate_of ON bug_reports (duplicate_of_id) WHERE duplicate_of_id IS NOT NULL",
    # Covers the status x severity summary of canonical reports.
    "CREATE INDEX ix_bug_reports_canonical ON bug_reports (status, severity) WHERE duplicate_of_id IS NULL",
)


def up(migrator, db):
    class BugReport(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        number = IntegerField(unique=True)
        title = TextField()
        description = TextField(null=True)
        severity = CharField(max_length=16)
        category = CharField(max_length=64, default="other")
        status = CharField(max_length=32, default="new")
        close_reason = CharField(max_length=16, null=True)
        source = CharField(max_length=16, default="user")
        reporter_id = CharField(max_length=255, null=True)
        assignee_id = CharField(max_length=255, null=True, index=True)
        component = CharField(max_length=255, null=True)
        route = CharField(max_length=1024, null=True)
        environment = CharField(max_length=64, null=True)
        exception_type = CharField(max_length=255, null=True)
        stacktrace = TextField(null=True)
        trace_id = CharField(max_length=64, null=True, index=True)
        request_id = CharField(max_length=128, null=True, index=True)
        release_sha = CharField(max_length=64, null=True, index=True)
        fingerprint = CharField(max_length=64, null=True, index=True)
        duplicate_of = ForeignKeyField("self", null=True, on_delete="SET NULL", index=False)
        resolution_notes = TextField(null=True)
        resolution_commits = JSONField(null=True)
        fixed_in_release = CharField(max_length=64, null=True)
        claimed_by = CharField(max_length=255, null=True)
        claim_token_hash = CharField(max_length=64, null=True)
        claim_expires_at = UTCDateTimeField(null=True)
        needs_human = BooleanField(default=False)
        version = IntegerField(default=1)
        legacy_id = CharField(max_length=255, null=True, unique=True)
        idempotency_key = CharField(max_length=255, null=True, unique=True)
        details = JSONField(null=True)
        created_at = UTCDateTimeField(index=True)
        updated_at = UTCDateTimeField()
        resolved_at = UTCDateTimeField(null=True)
        sla_due_at = UTCDateTimeField()

        class Meta:
            database = db
            table_name = "bug_reports"

    class BugReportEvent(Model):
        id = BigAutoField()
        report = ForeignKeyField(BugReport, on_delete="CASCADE", index=False)
        kind = CharField(max_length=32)
        actor = CharField(max_length=255)
        from_status = CharField(max_length=32, null=True)
        to_status = CharField(max_length=32, null=True)
        body = TextField(null=True)
        data = JSONField(null=True)
        created_at = UTCDateTimeField(index=True)

        class Meta:
            database = db
            table_name = "bug_report_events"
            indexes = ((("report", "created_at"), False),)

    class BugReportDedup(Model):
        id = AutoField()
        fingerprint = CharField(max_length=64, unique=True)
        canonical = ForeignKeyField(BugReport, on_delete="CASCADE")
        algorithm = CharField(max_length=16)
        kind = CharField(max_length=16)
        signature = TextField()
        exception_type = CharField(max_length=255, null=True)
        frames = JSONField(null=True)
        component = CharField(max_length=255, null=True)
        route = CharField(max_length=1024, null=True)
        occurrences = IntegerField(default=1)
        first_seen_at = UTCDateTimeField()
        last_seen_at = UTCDateTimeField()
        last_event_at = UTCDateTimeField(null=True)

        class Meta:
            database = db
            table_name = "bug_report_dedup"

    class AgentRun(Model):
        id = UUIDField(primary_key=True, default=uuid.uuid4)
        report = ForeignKeyField(BugReport, on_delete="CASCADE")
        agent = CharField(max_length=255, index=True)
        started_at = UTCDateTimeField()
        finished_at = UTCDateTimeField(null=True)
        outcome = CharField(max_length=16, default="running")
        commits = JSONField(null=True)
        log = TextField(null=True)

        class Meta:
            database = db
            table_name = "agent_runs"

    class ApiToken(Model):
        id = AutoField()
        name = CharField(max_length=255, unique=True)
        token_hash = CharField(max_length=64, unique=True)
        scopes = CharField(max_length=255)
        created_at = UTCDateTimeField()
        last_used_at = UTCDateTimeField(null=True)
        revoked_at = UTCDateTimeField(null=True)

        class Meta:
            database = db
            table_name = "api_tokens"

    class Release(Model):
        id = AutoField()
        sha = CharField(max_length=64)
        version = CharField(max_length=64, null=True, index=True)
        environment = CharField(max_length=64, default="production")
        deployed_at = UTCDateTimeField()

        class Meta:
            database = db
            table_name = "releases"
            indexes = (
                (("sha", "environment"), True),
                (("environment", "deployed_at"), False),
            )

    db.create_tables([BugReport, BugReportEvent, BugReportDedup, AgentRun, ApiToken, Release])
    for sql in PARTIAL_INDEXES:
        db.execute_sql(sql)
    if isinstance(db, PostgresqlDatabase):
        # Short numbers come from a sequence on PostgreSQL, where several
        # writers insert at once; SQLite serialises writers and uses max + 1.
        db.execute_sql("CREATE SEQUENCE bug_reports_number_seq OWNED BY bug_reports.number")
