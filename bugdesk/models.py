"""Peewee models: the tables of DESIGN.md. No behaviour lives here; writes go through ``bugdesk.service``."""

from __future__ import annotations

import uuid

from peewee import (
    SQL,
    AutoField,
    BigAutoField,
    BooleanField,
    CharField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from bugdesk.clock import utcnow
from bugdesk.db import database
from bugdesk.fields import JSONField, UTCDateTimeField, UUIDField

# Literal SQL, spelled exactly as the partial indexes of schema/0001_initial.py:
# SQLite uses a partial index only when the query repeats its predicate
# verbatim, and never through bound parameters.
OPEN_PREDICATE = SQL("status NOT IN ('resolved', 'closed')")
QUEUE_PREDICATE = SQL("status IN ('new', 'triaged')")
# The expression of PostgreSQL's search index (schema/0003_fts.py), repeated
# verbatim so the planner matches the GIN index.
PG_SEARCH_DOCUMENT = (
    "to_tsvector('simple'::regconfig, coalesce(title, '') || ' ' || left(coalesce(stacktrace, ''), 30000) "
    "|| ' ' || left(coalesce(description, ''), 30000))"
)


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class BugReport(BaseModel):
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
    assignee_id = CharField(max_length=255, null=True)  # indexed where not NULL: schema/0005
    component = CharField(max_length=255, null=True)
    route = CharField(max_length=1024, null=True)
    environment = CharField(max_length=64, null=True)
    exception_type = CharField(max_length=255, null=True)
    stacktrace = TextField(null=True)
    trace_id = CharField(max_length=64, null=True)  # indexed where not NULL: schema/0005
    request_id = CharField(max_length=128, null=True)  # indexed where not NULL: schema/0005
    release_sha = CharField(max_length=64, null=True)  # indexed where not NULL: schema/0005
    fingerprint = CharField(max_length=64, null=True, index=True)
    duplicate_of = ForeignKeyField("self", null=True, on_delete="SET NULL", backref="duplicates", index=False)
    resolution_notes = TextField(null=True)
    resolution_commits = JSONField(null=True)
    fixed_in_release = CharField(max_length=64, null=True)
    claimed_by = CharField(max_length=255, null=True)
    claim_token_hash = CharField(max_length=64, null=True)
    claim_expires_at = UTCDateTimeField(null=True)
    needs_human = BooleanField(default=False)
    version = IntegerField(default=1)
    legacy_id = CharField(max_length=255, null=True)  # unique where not NULL: schema/0005
    idempotency_key = CharField(max_length=255, null=True)  # unique where not NULL: schema/0005
    details = JSONField(null=True)
    created_at = UTCDateTimeField(default=utcnow, index=True)
    updated_at = UTCDateTimeField(default=utcnow)
    resolved_at = UTCDateTimeField(null=True)
    sla_due_at = UTCDateTimeField()

    class Meta:
        table_name = "bug_reports"


class BugReportEvent(BaseModel):
    id = BigAutoField()
    report = ForeignKeyField(BugReport, backref="events", on_delete="CASCADE", index=False)
    kind = CharField(max_length=32)
    actor = CharField(max_length=255)
    from_status = CharField(max_length=32, null=True)
    to_status = CharField(max_length=32, null=True)
    body = TextField(null=True)
    data = JSONField(null=True)
    created_at = UTCDateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "bug_report_events"
        indexes = ((("report", "created_at"), False),)


class BugReportDedup(BaseModel):
    """One row per fingerprint: which canonical it routes to and how often it was seen."""

    id = AutoField()
    fingerprint = CharField(max_length=64, unique=True)
    canonical = ForeignKeyField(BugReport, backref="dedup_rows", on_delete="CASCADE")
    algorithm = CharField(max_length=16)
    kind = CharField(max_length=16)
    signature = TextField()
    exception_type = CharField(max_length=255, null=True)
    frames = JSONField(null=True)
    component = CharField(max_length=255, null=True)
    route = CharField(max_length=1024, null=True)
    occurrences = IntegerField(default=1)
    first_seen_at = UTCDateTimeField(default=utcnow)
    last_seen_at = UTCDateTimeField(default=utcnow)
    last_event_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "bug_report_dedup"


class AgentRun(BaseModel):
    id = UUIDField(primary_key=True, default=uuid.uuid4)
    report = ForeignKeyField(BugReport, backref="agent_runs", on_delete="CASCADE")
    agent = CharField(max_length=255, index=True)
    started_at = UTCDateTimeField(default=utcnow)
    finished_at = UTCDateTimeField(null=True)
    outcome = CharField(max_length=16, default="running")
    commits = JSONField(null=True)
    log = TextField(null=True)

    class Meta:
        table_name = "agent_runs"


class ApiToken(BaseModel):
    id = AutoField()
    name = CharField(max_length=255, unique=True)
    token_hash = CharField(max_length=64, unique=True)
    scopes = CharField(max_length=255)
    created_at = UTCDateTimeField(default=utcnow)
    last_used_at = UTCDateTimeField(null=True)
    revoked_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "api_tokens"


class Release(BaseModel):
    id = AutoField()
    sha = CharField(max_length=64)
    version = CharField(max_length=64, null=True, index=True)
    environment = CharField(max_length=64, default="production")
    deployed_at = UTCDateTimeField(default=utcnow)

    class Meta:
        table_name = "releases"
        indexes = (
            (("sha", "environment"), True),
            (("environment", "deployed_at"), False),
        )


ALL_MODELS = (BugReport, BugReportEvent, BugReportDedup, AgentRun, ApiToken, Release)
