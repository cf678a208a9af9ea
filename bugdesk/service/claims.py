"""Claims: an agent leases a report, heartbeats to keep it, releases or resolves it; leases expire.

Exactly one claimer wins a race: on SQLite every write transaction is
``BEGIN IMMEDIATE`` (one writer at a time); on PostgreSQL claim-next takes
``FOR UPDATE SKIP LOCKED`` so concurrent claimers skip each other's rows, and
every update is guarded by the row's version.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bugdesk import validate
from bugdesk.clock import utcnow
from bugdesk.config import Settings
from bugdesk.db import is_postgres
from bugdesk.errors import ClaimConflict, QueueEmpty, ValidationError
from bugdesk.lifecycle import CLAIMABLE_STATUSES, DONE_STATUSES, SEVERITIES
from bugdesk.models import BugReport
from bugdesk.service._base import (
    get_report,
    guarded_update,
    record_event,
    require_actor,
    sha256_hex,
    transaction,
)
from bugdesk.service._fast import execute, portable


@dataclass
class Claim:
    report: BugReport
    token: str  # returned once; only its hash is stored
    expires_at: datetime


@dataclass
class QueueFilter:
    """Which reports claim-next may hand out (all optional)."""

    severities: list[str] = field(default_factory=lambda: list(SEVERITIES))
    categories: list[str] | None = None
    components: list[str] | None = None
    environment: str | None = None
    # Skip reports this agent already failed on (set False to retry them).
    skip_failed: bool = True


def _lease(settings: Settings, lease_seconds: int | None) -> timedelta:
    if lease_seconds is None:
        return settings.lease
    if not isinstance(lease_seconds, int) or not (5 <= lease_seconds <= 86_400):
        raise ValidationError("lease_seconds must be between 5 and 86400", field="lease_seconds")
    return timedelta(seconds=lease_seconds)


def _take(report: BugReport, agent: str, lease: timedelta, now: datetime, *, reclaimed: bool = False) -> Claim:
    token = "ct_" + secrets.token_urlsafe(24)
    expires = now + lease
    from_status = report.status
    to_status = "in_progress" if from_status in CLAIMABLE_STATUSES else from_status
    guarded_update(
        report,
        None,
        now,
        status=to_status,
        claimed_by=agent,
        claim_token_hash=sha256_hex(token),
        claim_expires_at=expires,
    )
    record_event(
        report,
        "claimed",
        agent,
        at=now,
        from_status=from_status,
        to_status=to_status,
        data={"expires_at": expires.isoformat(), "reclaimed": reclaimed},
    )
    return Claim(report=report, token=token, expires_at=expires)


def claim(
    ref: Any,
    agent: str,
    *,
    lease_seconds: int | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Claim:
    """Claim one report. The same agent may re-claim its own report (a fresh token replaces the old)."""
    settings = settings or Settings()
    agent = require_actor(agent)
    lease = _lease(settings, lease_seconds)
    now = now or utcnow()
    with transaction():
        report = get_report(ref, for_update=True)
        if report.duplicate_of_id is not None:
            raise ClaimConflict(
                f"report #{report.number} is a duplicate; claim its canonical report instead",
                canonical=str(report.duplicate_of_id),
            )
        if report.status in DONE_STATUSES:
            raise ClaimConflict(f"report #{report.number} is {report.status}; reopen it before claiming")
        live = report.claimed_by is not None and report.claim_expires_at > now
        if live and report.claimed_by != agent:
            raise ClaimConflict(
                f"report #{report.number} is claimed by {report.claimed_by} until "
                f"{report.claim_expires_at.isoformat()}; pick another report or wait for the lease to end",
                claimed_by=report.claimed_by,
            )
        if report.claimed_by is not None and not live:
            _expire(report, now)
        return _take(report, agent, lease, now, reclaimed=live)


def claim_next(
    agent: str,
    queue: QueueFilter | None = None,
    *,
    lease_seconds: int | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> Claim:
    """Claim the most urgent report: by severity, then SLA due time. Raises QueueEmpty when none fits."""
    settings = settings or Settings()
    agent = require_actor(agent)
    queue = queue or QueueFilter()
    severities = [validate.severity(s, default=None) for s in queue.severities]
    lease = _lease(settings, lease_seconds)
    now = now or utcnow()
    with transaction():
        _sweep(now, limit=100)
        for severity in (s for s in SEVERITIES if s in severities):
            report = _next_candidate(severity, queue, agent)
            if report is not None:
                return _take(report, agent, lease, now)
    raise QueueEmpty("no report matches the queue filter; try again later or widen the filter")


def _next_candidate(severity: str, queue: QueueFilter, agent: str) -> BugReport | None:
    # Hand-written because it runs for every claim; the first three predicates
    # repeat the partial index ix_bug_reports_queue so SQLite seeks it.
    sql = [
        "SELECT * FROM bug_reports WHERE status IN ('new', 'triaged') AND duplicate_of_id IS NULL",
        "AND severity = ? AND needs_human = ?",
    ]
    params: list[Any] = [severity, False]
    for column, values in (("category", queue.categories), ("component", queue.components)):
        if values:
            sql.append(f"AND {column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    if queue.environment:
        sql.append("AND environment = ?")
        params.append(queue.environment)
    if queue.skip_failed:
        sql.append(
            "AND NOT EXISTS (SELECT 1 FROM agent_runs r WHERE r.report_id = bug_reports.id "
            "AND r.agent = ? AND r.outcome = 'failed')"
        )
        params.append(agent)
    sql.append("ORDER BY sla_due_at, number LIMIT 1")
    if is_postgres():
        sql.append("FOR UPDATE SKIP LOCKED")
    text = portable(" ".join(sql))
    return next(iter(BugReport.raw(text, *params)), None)


def _verify(report: BugReport, token: str | None, now: datetime) -> None:
    if not report.claimed_by:
        raise ClaimConflict(f"report #{report.number} is not claimed (the lease may have expired); claim it again")
    if not token or not hmac.compare_digest(sha256_hex(token), report.claim_token_hash or ""):
        raise ClaimConflict(f"the claim token does not match the current claim on report #{report.number}")
    if report.claim_expires_at <= now:
        raise ClaimConflict(
            f"the lease on report #{report.number} expired at {report.claim_expires_at.isoformat()}; claim it again"
        )


def heartbeat(
    ref: Any,
    token: str,
    *,
    lease_seconds: int | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> datetime:
    """Extend a live lease; returns the new expiry. Does not bump the report's version."""
    settings = settings or Settings()
    lease = _lease(settings, lease_seconds)
    now = now or utcnow()
    with transaction():
        report = get_report(ref, for_update=True)
        _verify(report, token, now)
        expires = now + lease
        BugReport.update(claim_expires_at=expires).where(BugReport.id == report.id).execute()
        report.claim_expires_at = expires
        record_event(report, "heartbeat", report.claimed_by, at=now, data={"expires_at": expires.isoformat()})
        return expires


def release(ref: Any, token: str, *, reason: str | None = None, now: datetime | None = None) -> BugReport:
    """Give a claimed report back to the queue."""
    reason = validate.clean_text(reason, "reason")
    now = now or utcnow()
    with transaction():
        report = get_report(ref, for_update=True)
        _verify(report, token, now)
        agent, from_status = report.claimed_by, report.status
        to_status = "triaged" if from_status == "in_progress" else from_status
        guarded_update(
            report, None, now, status=to_status, claimed_by=None, claim_token_hash=None, claim_expires_at=None
        )
        record_event(report, "released", agent, at=now, from_status=from_status, to_status=to_status, body=reason)
        return report


def _expire(report: BugReport, now: datetime) -> None:
    agent, from_status = report.claimed_by, report.status
    to_status = "triaged" if from_status == "in_progress" else from_status
    guarded_update(report, None, now, status=to_status, claimed_by=None, claim_token_hash=None, claim_expires_at=None)
    record_event(
        report, "lease_expired", "system", at=now, from_status=from_status, to_status=to_status, data={"agent": agent}
    )


def expire_leases(*, now: datetime | None = None, limit: int = 500) -> int:
    """End every lease that ran out; each report goes back to the queue with a `lease_expired` event."""
    with transaction():
        return _sweep(now or utcnow(), limit)


def _sweep(now: datetime, limit: int) -> int:
    due = BugReport.claim_expires_at.db_value(now)
    if not execute(
        "SELECT 1 FROM bug_reports WHERE claimed_by IS NOT NULL AND claim_expires_at <= ? LIMIT 1", [due]
    ).fetchone():
        return 0  # the common case, answered from the partial index without building a query
    query = (
        BugReport.select().where(BugReport.claimed_by.is_null(False), BugReport.claim_expires_at <= now).limit(limit)
    )
    if is_postgres():
        query = query.for_update(skip_locked=True)
    reports = list(query)
    for report in reports:
        _expire(report, now)
    return len(reports)


__all__ = ["Claim", "QueueFilter", "claim", "claim_next", "expire_leases", "heartbeat", "release"]
