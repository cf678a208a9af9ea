"""Creating reports and moving them through their lifecycle: triage, status, notes, resolve, reopen."""

from __future__ import annotations

import hmac
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from peewee import IntegrityError

from bugdesk import validate
from bugdesk.clock import as_utc, utcnow
from bugdesk.config import Settings
from bugdesk.db import database, is_postgres
from bugdesk.errors import ClaimConflict, IllegalTransition, ValidationError
from bugdesk.lifecycle import (
    CLOSE_REASONS,
    DONE_STATUSES,
    REOPEN_STATUS,
    STATUSES,
    allowed_targets,
)
from bugdesk.models import BugReport
from bugdesk.service._base import (
    get_report,
    guarded_update,
    record_event,
    require_actor,
    sha256_hex,
    transaction,
)
from bugdesk.service._fast import execute, insert_row, select_one

_UNSET: Any = object()
_VERSIONISH = re.compile(r"^[0-9a-f]{7,64}$")


@dataclass
class Created:
    """What a submission became: a new report, or an occurrence of an existing canonical."""

    report: BugReport
    created: bool = True
    deduplicated: bool = False
    canonical: BugReport | None = None
    regressed: bool = False


def _next_number() -> int:
    if is_postgres():
        return database.execute_sql("SELECT nextval('bug_reports_number_seq')").fetchone()[0]
    # SQLite writers are serialised by BEGIN IMMEDIATE, so max + 1 cannot race.
    return execute("SELECT COALESCE(MAX(number), 0) + 1 FROM bug_reports", []).fetchone()[0]


def normalize_new_report(data: dict[str, Any]) -> dict[str, Any]:
    """Validate a submission and return the column values it sets (no database access)."""
    if not isinstance(data, dict):
        raise ValidationError("a report must be a JSON object")
    release = data.get("release_sha") or data.get("release")
    release_sha = None
    if release is not None:
        text = str(release).strip().lower()
        if _VERSIONISH.match(text):
            release_sha = text
    details = data.get("details") or {}
    if not isinstance(details, dict):
        raise ValidationError("details must be an object", field="details")
    details = validate.clean_json(details, "details")
    if release is not None and release_sha is None:
        # A version number: the enrichment job maps it to a sha via the releases timeline.
        details = {**details, "release": validate.clean_name(release, "release")}
    created_at = data.get("created_at")
    if created_at is not None and not isinstance(created_at, datetime):
        try:
            created_at = datetime.fromisoformat(str(created_at))
        except ValueError:
            raise ValidationError("created_at must be an ISO 8601 timestamp", field="created_at") from None
    return {
        "title": validate.clean_text(data.get("title"), "title", max_len=validate.TITLE_MAX, required=True).strip(),
        "description": validate.clean_text(data.get("description"), "description"),
        "severity": validate.severity(data.get("severity")),
        "category": (validate.clean_name(data.get("category"), "category", max_len=64) or "other").lower(),
        "source": validate.source(data.get("source")),
        "reporter_id": validate.clean_name(data.get("reporter_id"), "reporter_id"),
        "assignee_id": validate.clean_name(data.get("assignee_id"), "assignee_id"),
        "component": validate.clean_name(data.get("component"), "component"),
        "route": validate.clean_name(data.get("route"), "route", max_len=1024),
        "environment": validate.clean_name(data.get("environment"), "environment", max_len=64),
        "exception_type": validate.clean_name(data.get("exception_type"), "exception_type"),
        "stacktrace": validate.clean_text(data.get("stacktrace"), "stacktrace"),
        "trace_id": validate.hex_id(data.get("trace_id"), "trace_id", lengths=(32, 16)),
        "request_id": validate.request_id(data.get("request_id")),
        "release_sha": release_sha,
        "legacy_id": validate.clean_name(data.get("legacy_id"), "legacy_id"),
        "created_at": as_utc(created_at) if created_at else None,
        "details": details or None,
    }


def create_report(
    data: dict[str, Any],
    actor: str,
    *,
    settings: Settings | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Created:
    """File a report: validated, numbered, SLA set, grouped with its duplicates, ``created`` event written.

    With an ``idempotency_key`` a retry returns the first answer and creates nothing.
    """
    from bugdesk.service import dedup  # grouping depends on reports, not the other way round

    settings = settings or Settings()
    actor = require_actor(actor)
    values = normalize_new_report(data)
    values["idempotency_key"] = validate.clean_name(idempotency_key, "idempotency_key")
    # Fingerprinting is pure CPU work: done before the write lock is taken.
    fp = dedup.fingerprint_of(values)
    for attempt in range(3):
        try:
            with transaction():
                if values["idempotency_key"] is not None:
                    # Compiled once: building this wide select per call cost as much as the rest of the create.
                    existing = select_one(
                        BugReport,
                        "report_by_idempotency_key",
                        lambda: BugReport.select().where(BugReport.idempotency_key == ""),
                        [values["idempotency_key"]],
                    )
                    if existing is not None:
                        return _replay(existing)
                return _insert(dict(values), fp, actor, settings, now or utcnow())
        except IntegrityError:
            # Lost a race on PostgreSQL (same idempotency key, or a new fingerprint
            # created concurrently): the retry sees the winner's row.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _replay(existing: BugReport) -> Created:
    canonical = existing.duplicate_of
    return Created(report=existing, created=False, deduplicated=canonical is not None, canonical=canonical)


def _insert(values: dict[str, Any], fp, actor: str, settings: Settings, now: datetime) -> Created:
    from bugdesk.service import dedup

    created_at = values.pop("created_at") or now
    row, canonical = dedup.route(fp)
    values.update(
        id=uuid.uuid4(),
        number=_next_number(),
        status="new",
        fingerprint=fp.hash,
        exception_type=values["exception_type"] or (fp.exception_type or "")[:255] or None,
        duplicate_of=canonical.id if canonical else None,
        needs_human=False,
        version=1,
        created_at=created_at,
        updated_at=now,
        sla_due_at=created_at + settings.sla_for(values["severity"]),
    )
    insert_row(BugReport, values)
    report = BugReport(**values)
    record_event(
        report, "created", actor, at=now, to_status="new", data={"source": report.source, "severity": report.severity}
    )
    return dedup.count(report, fp, row, canonical, settings, now)


def triage(
    ref: Any,
    actor: str,
    *,
    version: int | None,
    severity: str | None = None,
    category: str | None = None,
    assignee_id: Any = _UNSET,
    component: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> BugReport:
    """Set triage fields. A `new` report becomes `triaged`; a severity change recomputes the SLA.

    A human triage also clears the `needs_human` flag, handing the report back to agents.
    """
    settings = settings or Settings()
    actor = require_actor(actor)
    now = now or utcnow()
    with transaction():
        report = get_report(ref, for_update=True)
        changes: dict[str, Any] = {}
        if severity is not None:
            changes["severity"] = validate.severity(severity, default=None)
        if category is not None:
            changes["category"] = (validate.clean_name(category, "category", max_len=64) or "other").lower()
        if assignee_id is not _UNSET:
            changes["assignee_id"] = validate.clean_name(assignee_id, "assignee_id")
        if component is not None:
            changes["component"] = validate.clean_name(component, "component")
        changes = {k: v for k, v in changes.items() if getattr(report, k) != v}
        if "severity" in changes:
            changes["sla_due_at"] = report.created_at + settings.sla_for(changes["severity"])
        if report.needs_human:
            changes["needs_human"] = False
        from_status = report.status
        if from_status == "new":
            changes["status"] = "triaged"
        if not changes:
            if version is not None and version != report.version:
                guarded_update(report, version, now)  # raises StaleVersion
            return report
        diff = {k: [_jsonable(getattr(report, k)), _jsonable(v)] for k, v in changes.items()}
        guarded_update(report, version, now, **changes)
        kind = "assigned" if set(changes) == {"assignee_id"} else "triaged"
        record_event(
            report, kind, actor, at=now, from_status=from_status, to_status=report.status, data={"changes": diff}
        )
        return report


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _check_claim(report: BugReport, actor: str, claim_token: str | None, force: bool, now: datetime) -> None:
    """Someone else's live claim blocks changes unless forced (a human overriding)."""
    if force or not report.claimed_by:
        return
    if claim_token is not None and hmac.compare_digest(sha256_hex(claim_token), report.claim_token_hash or ""):
        return
    if claim_token is None and report.claim_expires_at and report.claim_expires_at <= now:
        return
    if claim_token is None and report.claimed_by == actor:
        raise ClaimConflict(
            f"report #{report.number} is claimed by you ({actor}); send the claim token with this change"
        )
    raise ClaimConflict(
        f"report #{report.number} is claimed by {report.claimed_by} until "
        f"{report.claim_expires_at.isoformat()}; "
        + ("the claim token does not match" if claim_token else "send its claim token, or wait for the lease to end"),
        claimed_by=report.claimed_by,
    )


_CLEAR_CLAIM = {"claimed_by": None, "claim_token_hash": None, "claim_expires_at": None}


def move(
    ref: Any,
    to_status: str,
    actor: str,
    *,
    version: int | None,
    note: str | None = None,
    close_reason: str | None = None,
    claim_token: str | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> BugReport:
    """Change status through the transition table; an illegal move names the allowed targets."""
    actor = require_actor(actor)
    to_status = validate.choice(to_status, "status", STATUSES)
    note = validate.clean_text(note, "note")
    now = now or utcnow()
    with transaction():
        report = get_report(ref, for_update=True)
        from_status = report.status
        allowed = allowed_targets(from_status)
        if to_status not in allowed:
            raise IllegalTransition(
                f"report #{report.number} cannot move from {from_status} to {to_status}; "
                f"allowed from {from_status}: {', '.join(allowed) or 'nothing'}",
                allowed=list(allowed),
                status=from_status,
            )
        _check_claim(report, actor, claim_token, force, now)
        changes: dict[str, Any] = {"status": to_status}
        if to_status not in ("in_progress", "awaiting_verification"):
            changes.update(_CLEAR_CLAIM)
        if to_status == "resolved":
            changes["resolved_at"] = now
            changes["close_reason"] = None
        elif to_status == "closed":
            reason = close_reason or ("done" if from_status == "resolved" else "wont_fix")
            changes["close_reason"] = validate.choice(reason, "close_reason", CLOSE_REASONS)
            # resolved_at marks a fix: kept (or set) for a `done` close, cleared otherwise.
            changes["resolved_at"] = (report.resolved_at or now) if changes["close_reason"] == "done" else None
        elif from_status in DONE_STATUSES:
            changes["resolved_at"] = None
            changes["close_reason"] = None
        guarded_update(report, version, now, **changes)
        kind = "reopened" if from_status in DONE_STATUSES and to_status not in DONE_STATUSES else "status_changed"
        record_event(
            report,
            kind,
            actor,
            at=now,
            from_status=from_status,
            to_status=to_status,
            body=note,
            data={"close_reason": changes.get("close_reason")} if to_status == "closed" else None,
        )
        return report


def resolve(
    ref: Any,
    actor: str,
    *,
    notes: str | None = None,
    commits: Any = None,
    claim_token: str | None = None,
    version: int | None = None,
    fixed_in_release: str | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> BugReport:
    """Mark a report resolved with notes and commit SHAs; a claimed report needs its claim token."""
    actor = require_actor(actor)
    notes = validate.clean_text(notes, "resolution_notes")
    commit_list = validate.commits(commits)
    fixed = validate.clean_name(fixed_in_release, "fixed_in_release", max_len=64)
    now = now or utcnow()
    with transaction():
        report = get_report(ref, for_update=True)
        if "resolved" not in allowed_targets(report.status):
            raise IllegalTransition(
                f"report #{report.number} is {report.status} and cannot be resolved; "
                f"allowed from {report.status}: {', '.join(allowed_targets(report.status))}"
                + ("; reopen it first" if report.status in DONE_STATUSES else ""),
                allowed=list(allowed_targets(report.status)),
                status=report.status,
            )
        _check_claim(report, actor, claim_token, force, now)
        from_status = report.status
        guarded_update(
            report, version, now,
            status="resolved", resolved_at=now, close_reason=None,
            resolution_notes=notes, resolution_commits=commit_list or None,
            fixed_in_release=fixed, **_CLEAR_CLAIM,
        )  # fmt: skip
        record_event(
            report,
            "resolved",
            actor,
            at=now,
            from_status=from_status,
            to_status="resolved",
            body=notes,
            data={"commits": commit_list, "fixed_in_release": fixed},
        )
        return report


def reopen(
    ref: Any, actor: str, *, reason: str | None = None, version: int | None = None, now: datetime | None = None
) -> BugReport:
    """Bring a resolved or closed report back to the queue (as `triaged`)."""
    report = get_report(ref)
    if report.status not in DONE_STATUSES:
        raise IllegalTransition(
            f"report #{report.number} is {report.status}, not resolved or closed; nothing to reopen",
            allowed=list(allowed_targets(report.status)),
            status=report.status,
        )
    return move(report.id, REOPEN_STATUS, actor, version=version, note=reason, force=True, now=now)


def add_note(
    ref: Any,
    actor: str,
    body: str,
    *,
    kind: str = "note",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> int:
    """Attach a note or an agent log entry; returns the event id. The report itself is unchanged."""
    actor = require_actor(actor)
    kind = validate.choice(kind, "kind", ("note", "agent_log"))
    body = validate.clean_text(body, "body", required=True)
    if data is not None and not isinstance(data, dict):
        raise ValidationError("data must be an object", field="data")
    if data is not None:
        data = validate.clean_json(data, "data")
    with transaction():
        report = get_report(ref)
        return record_event(report, kind, actor, at=now or utcnow(), body=body, data=data)
