"""Request and response models of the agent API: strict vocabularies, bounded lengths, no unknown fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from bugdesk import validate
from bugdesk.errors import ValidationError
from bugdesk.lifecycle import CLOSE_REASONS, SEVERITIES, SOURCES, STATUSES
from bugdesk.service.runs import OUTCOMES
from bugdesk.service.tokens import SCOPES

# The vocabularies come from bugdesk.lifecycle; a test checks these literals still match it.
Severity = Literal["critical", "high", "medium", "low"]
Status = Literal["new", "triaged", "in_progress", "awaiting_verification", "resolved", "closed"]
StatusFilter = Literal["new", "triaged", "in_progress", "awaiting_verification", "resolved", "closed", "open", "done"]
Source = Literal["user", "agent", "system"]
CloseReason = Literal["done", "wont_fix", "duplicate"]
Outcome = Literal["succeeded", "failed", "abandoned"]
Scope = Literal["read", "write", "ingest", "admin"]
NoteKind = Literal["note", "agent_log"]
VOCABULARIES = {
    Severity: SEVERITIES,
    Status: STATUSES,
    Source: SOURCES,
    CloseReason: CLOSE_REASONS,
    Outcome: OUTCOMES,
    Scope: SCOPES,
}

TEXT_MAX = 1_000_000  # the request body is capped at 1 MiB anyway (setting api_body_limit_bytes)
Short = Annotated[str, Field(max_length=255)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
CommitSha = Annotated[str, Field(min_length=7, max_length=64, pattern=r"^[0-9a-fA-F]+$")]
Commits = Annotated[list[CommitSha], Field(max_length=100)]
LeaseSeconds = Annotated[int, Field(ge=5, le=86_400, description="Lease length; the server default when omitted.")]
# Bounded so it fits a 64-bit column on every backend (an unbounded one overflowed SQLite's integer binding).
Version = Annotated[int, Field(ge=1, le=2**62, description="The version you read (alternative to If-Match).")]
# A filter value or label: one line, no control characters (NUL cannot even be compared on PostgreSQL).
Label = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]*$")]


def _plausible(value: datetime) -> datetime:
    # The store keeps timestamps as fixed-width text on SQLite: a year outside 1970..9999 would not sort.
    # Checked in UTC, which is what is stored: 9999-12-31T23:00-14:00 is already in the year 10000.
    try:
        utc = value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        utc = None
    if utc is None or not 1970 <= utc.year <= 9999:
        raise ValueError("must be between the years 1970 and 9999 (in UTC)")
    return value


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    try:
        return validate.clean_json(value, "value")
    except ValidationError as exc:
        raise ValueError(exc.message.removeprefix("value ")) from None


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]


Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible)]
TimestampFilter = Annotated[datetime, AfterValidator(_plausible)]
ReportRefText = Annotated[str, Field(min_length=1, max_length=40, description="A report number (42) or UUID.")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------ reports


class ReportCreate(_Request):
    """A new bug report. Missing trace_id/request_id/release_sha are filled from the request headers."""

    title: Annotated[str, Field(min_length=1, max_length=500)]
    description: Text | None = None
    severity: Severity = "medium"
    category: Annotated[str, Field(max_length=64)] | None = None
    source: Source = "user"
    reporter_id: Short | None = None
    assignee_id: Short | None = None
    component: Short | None = None
    route: Annotated[str, Field(max_length=1024)] | None = None
    environment: Annotated[str, Field(max_length=64)] | None = None
    exception_type: Short | None = None
    stacktrace: Text | None = None
    trace_id: Annotated[str, Field(max_length=64, description="32 (or 16) hex characters.")] | None = None
    request_id: Annotated[str, Field(max_length=128)] | None = None
    release_sha: Annotated[str, Field(max_length=64, description="A commit SHA or a version.")] | None = None
    details: JsonObject | None = Field(
        default=None, description="Free-form context; `frames` (structured stack frames) is used for grouping."
    )
    created_at: Timestamp | None = Field(default=None, description="When the problem happened (default: now).")


class ClaimInfo(BaseModel):
    claimed_by: str
    expires_at: datetime


class ReportPublic(BaseModel):
    """A report's own columns (DESIGN names)."""

    id: uuid.UUID
    number: int
    title: str
    description: str | None
    severity: Severity
    category: str
    status: Status
    close_reason: CloseReason | None
    source: Source
    reporter_id: str | None
    assignee_id: str | None
    component: str | None
    route: str | None
    environment: str | None
    exception_type: str | None
    stacktrace: str | None
    trace_id: str | None
    request_id: str | None
    release_sha: str | None
    fingerprint: str | None
    duplicate_of_id: uuid.UUID | None
    resolution_notes: str | None
    resolution_commits: list[str] | None
    fixed_in_release: str | None
    needs_human: bool
    version: int
    legacy_id: str | None
    details: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    sla_due_at: datetime
    claim: ClaimInfo | None


class ReportRef(BaseModel):
    id: uuid.UUID
    number: int


class DedupGroup(BaseModel):
    """The group a report belongs to and what went into its fingerprint."""

    canonical: ReportRef
    occurrences: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    fingerprint: str | None
    algorithm: str | None
    kind: str | None
    signature: str | None
    exception_type: str | None
    frames: list[str]
    component: str | None
    route: str | None
    fingerprints: int = Field(description="How many fingerprints route to the canonical.")


class EventPublic(BaseModel):
    id: int
    report_id: uuid.UUID
    kind: str
    actor: str
    from_status: str | None
    to_status: str | None
    body: str | None
    data: dict[str, Any] | None
    created_at: datetime


class RunPublic(BaseModel):
    id: uuid.UUID
    report_id: uuid.UUID
    agent: str
    started_at: datetime
    finished_at: datetime | None
    outcome: Literal["running", "succeeded", "failed", "abandoned"]
    commits: list[str]
    log: str | None


class Attempts(BaseModel):
    total: int
    failed: int
    running: int


class ReportDetail(ReportPublic):
    """A report with what an agent needs to work on it."""

    merged_into: ReportRef | None = Field(description="The canonical report, when this one is a duplicate.")
    dedup: DedupGroup
    repo_path_hints: list[str] = Field(description="In-app files from the stack trace, innermost first (path:line).")
    events: list[EventPublic] = Field(description="The latest events, oldest first.")
    agent_runs: list[RunPublic]
    attempts: Attempts


class ReportPage(BaseModel):
    items: list[ReportPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class CanonicalRef(ReportRef):
    status: Status
    version: int


class SubmissionResult(BaseModel):
    """What a submission became: 201 when it is a new canonical report, 200 when it joined an existing group.

    Deliberately small (a service's error hook reads it, not an agent): GET the canonical for the rest.
    """

    canonical: CanonicalRef = Field(description="The canonical report (the submission itself when it is new).")
    submission: ReportRef = Field(description="The stored submission (a duplicate row when deduplicated).")
    deduplicated: bool
    regressed: bool = Field(description="The submission reopened a resolved canonical.")
    replayed: bool = Field(description="The Idempotency-Key was seen before: this is the first answer again.")


class ReportUpdate(_Request):
    """A lifecycle move (`status` with its extras) or triage fields: one kind of change per request."""

    version: Version | None = None
    status: Status | None = None
    close_reason: CloseReason | None = None
    note: Text | None = None
    claim_token: Annotated[str, Field(max_length=128)] | None = None
    resolution_notes: Text | None = None
    resolution_commits: Commits | None = None
    fixed_in_release: Annotated[str, Field(max_length=64)] | None = None
    severity: Severity | None = None
    category: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    assignee_id: Short | None = Field(default=None, description="null unassigns.")
    component: Short | None = None


class ResolveRequest(_Request):
    claim_token: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="Required while the report is claimed."
    )
    notes: Text | None = None
    commits: Commits | None = None
    fixed_in_release: Annotated[str, Field(max_length=64)] | None = None
    version: Version | None = None


class ReopenRequest(_Request):
    reason: Text | None = None
    version: Version | None = None


# ------------------------------------------------------------------------------------------- events


class NoteCreate(_Request):
    kind: NoteKind = "note"
    body: Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]
    data: JsonObject | None = None


# ------------------------------------------------------------------------------------------- claims


class ClaimRequest(_Request):
    lease_seconds: LeaseSeconds | None = None


class ClaimNextRequest(_Request):
    severities: Annotated[list[Severity], Field(max_length=4)] | None = None
    categories: Annotated[list[Annotated[Label, Field(max_length=64)]], Field(max_length=50)] | None = None
    components: Annotated[list[Annotated[Label, Field(max_length=255)]], Field(max_length=50)] | None = None
    environment: Annotated[Label, Field(max_length=64)] | None = None
    skip_failed: bool = Field(default=True, description="Skip reports this agent already failed on.")
    lease_seconds: LeaseSeconds | None = None
    wait: float = Field(
        default=0, ge=0, le=30, description="Long-poll: seconds to wait for a report before answering 204."
    )


class ClaimGranted(BaseModel):
    claim_token: str = Field(description="Shown once; send it with heartbeat, release and resolve.")
    expires_at: datetime
    report: ReportDetail


class HeartbeatRequest(_Request):
    claim_token: Annotated[str, Field(min_length=1, max_length=128)]
    lease_seconds: LeaseSeconds | None = None


class HeartbeatResult(BaseModel):
    expires_at: datetime


class ClaimRelease(_Request):
    claim_token: Annotated[str, Field(min_length=1, max_length=128)]
    reason: Text | None = None


# --------------------------------------------------------------------------------------------- runs


class RunFinish(_Request):
    outcome: Outcome
    commits: Commits | None = None
    log: Text | None = None


# -------------------------------------------------------------------------------------------- admin


class MergeRequest(_Request):
    into: ReportRefText = Field(description="The report whose group absorbs this report's group.")


class ReleaseCreate(_Request):
    sha: CommitSha
    version: Annotated[str, Field(max_length=64)] | None = None
    environment: Annotated[str, Field(max_length=64)] | None = None
    deployed_at: Timestamp | None = None


class ReleasePublic(BaseModel):
    sha: str
    version: str | None
    environment: str
    deployed_at: datetime


class TokenCreate(_Request):
    name: Annotated[str, Field(min_length=1, max_length=255)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=4)]


class TokenPublic(BaseModel):
    name: str
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenSecret(TokenPublic):
    secret: str = Field(description="Shown once; only its SHA-256 is stored.")


# --------------------------------------------------------------------------------------------- meta


class Health(BaseModel):
    status: Literal["ok"]
    database: Literal["sqlite", "postgresql"]
    version: str
    release: str | None


class OldestOpen(BaseModel):
    number: int
    title: str
    created_at: datetime
    age_seconds: int


class StatusSummary(BaseModel):
    generated_at: datetime
    counts: dict[Status, dict[Severity, int]]
    open: int
    open_by_severity: dict[Severity, int]
    total: int
    duplicates: int
    sla_breaches: int
    sla_breaches_by_severity: dict[Severity, int]
    oldest_open: OldestOpen | None
    active_claims: int
    needs_human: int


class Problem(BaseModel):
    """An RFC 9457 problem: `detail` says what was wrong and what to do; extra members carry specifics."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:bugdesk:problem:<kind>")
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="The offending field, when there is one.")
    allowed: list[str] | None = Field(default=None, description="Allowed values or status targets.")
    current_version: int | None = Field(default=None, description="The stored version (on 412).")
    request_id: str | None = None


_PROBLEM_DESCRIPTIONS = {
    400: "The body could not be read as JSON text (for example, it is not UTF-8).",
    401: "Missing, invalid or revoked token.",
    403: "The token lacks the scope this call needs.",
    404: "No such report (or run, or token).",
    409: "Conflict: an illegal status transition (`allowed` lists the targets) or someone else's claim.",
    412: "Stale version: re-read the report and retry with its current version (`current_version`).",
    413: "The request body is larger than the server accepts.",
    422: "Invalid input; `field` names the offending field.",
    428: 'The change must name the version it is based on: `If-Match: "<version>"` or `version`.',
    429: "This worker has as many requests in flight as it admits: retry after `Retry-After` seconds.",
    503: "The database is busy or unavailable; retry after `Retry-After` seconds.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these problem+json statuses (the schema is registered by the app)."""
    return {
        code: {
            "description": _PROBLEM_DESCRIPTIONS[code],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


# Every authenticated call may also meet admission control (429, bugdesk/api/admission.py).
AUTH = (401, 403, 422, 429, 503)
BODY = (400, 413)
