"""Grouping: every new report is routed by fingerprint to a canonical incident.

Rules, in order, for a report whose fingerprint already routes to canonical C:

1. C is open: the report is a duplicate of C.
2. C was closed as won't-fix (or as a duplicate): it only counts; C stays closed.
3. C was resolved (or closed after being resolved):
   - a report created before the resolution is a late arrival and only counts;
   - the fix's release is the one named at resolution, else the first release
     deployed after the resolution in the report's environment;
   - no release recorded after the resolution while the environment has a
     timeline: the fix is not deployed yet, so the report only counts;
   - the report comes from a release deployed before the fix's release (or,
     without a release, was created before the fix was deployed): it only counts;
   - otherwise it is a regression: C reopens with a `regressed` event naming
     the report, its release and the fix release that did not hold;
   - with no release timeline at all, reports within ``dedup_window_hours``
     of the resolution only count, later ones are regressions.

Every counted report is stored with ``duplicate_of_id`` = C. ``occurrence``
events on C are aggregated: at most one per ``occurrence_event_seconds``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bugdesk import fingerprint
from bugdesk.config import Settings
from bugdesk.db import is_postgres
from bugdesk.errors import ValidationError
from bugdesk.lifecycle import DONE_STATUSES, REOPEN_STATUS
from bugdesk.models import BugReport, BugReportDedup, Release
from bugdesk.service import releases
from bugdesk.service._base import (
    get_report,
    guarded_update,
    record_event,
    require_actor,
    transaction,
)
from bugdesk.service._fast import execute, insert_row, select_one
from bugdesk.service.reports import Created


def signal_from(values: dict[str, Any]) -> fingerprint.Signal:
    details = values.get("details") or {}
    frames = details.get("frames")
    return fingerprint.Signal(
        title=values.get("title"),
        description=values.get("description"),
        stacktrace=values.get("stacktrace"),
        frames=fingerprint.frames_from_list(frames) if isinstance(frames, list) and frames else None,
        exception_type=values.get("exception_type"),
        exception_message=details.get("exception_message"),
        component=values.get("component"),
        route=values.get("route") or details.get("url"),
    )


def fingerprint_of(values: dict[str, Any]) -> fingerprint.Fingerprint:
    return fingerprint.compute(signal_from(values))


def canonical_of(report: BugReport) -> BugReport:
    """Follow duplicate links to the group's canonical (merges can chain)."""
    seen = set()
    while report.duplicate_of_id is not None and report.id not in seen:
        seen.add(report.id)
        report = BugReport.get_by_id(report.duplicate_of_id)
    return report


# The columns the routing rules read; the canonical's text columns can be large.
_CANONICAL_COLUMNS = (
    BugReport.id, BugReport.number, BugReport.status, BugReport.close_reason, BugReport.duplicate_of,
    BugReport.resolved_at, BugReport.updated_at, BugReport.environment, BugReport.fixed_in_release,
    BugReport.version,
)  # fmt: skip


def route(fp: fingerprint.Fingerprint) -> tuple[BugReportDedup | None, BugReport | None]:
    """The dedup row of ``fp`` and its canonical report (None, None for a new fingerprint).

    Called inside the create transaction; on PostgreSQL the row is locked so
    concurrent occurrences count one after the other.
    """

    def build_row():
        query = BugReportDedup.select().where(BugReportDedup.fingerprint == "")
        return query.for_update() if is_postgres() else query

    row = select_one(BugReportDedup, "dedup_by_fingerprint", build_row, [fp.hash])
    if row is None:
        return None, None
    canonical = select_one(
        BugReport, "canonical_by_id",
        lambda: BugReport.select(*_CANONICAL_COLUMNS).where(BugReport.id == uuid.UUID(int=0)),
        [BugReport.id.db_value(row.canonical_id)],
    )  # fmt: skip
    if canonical.duplicate_of_id is not None:
        canonical = canonical_of(canonical)
    return row, canonical


def count(
    report: BugReport,
    fp: fingerprint.Fingerprint,
    row: BugReportDedup | None,
    canonical: BugReport | None,
    settings: Settings,
    now: datetime,
) -> Created:
    """After ``report`` is inserted: open its group, or count it in its canonical's and apply the rules."""
    if row is None:
        insert_row(BugReportDedup, {
            "fingerprint": fp.hash, "canonical": report.id, "algorithm": fp.algorithm, "kind": fp.kind,
            "signature": fp.signature, "exception_type": fp.exception_type, "frames": list(fp.frames) or None,
            "component": fp.component, "route": fp.route, "occurrences": 1,
            "first_seen_at": report.created_at, "last_seen_at": report.created_at,
        })  # fmt: skip
        return Created(report=report)
    seen = BugReportDedup.last_seen_at
    execute(
        "UPDATE bug_report_dedup SET occurrences = occurrences + 1, last_seen_at = ?, first_seen_at = ? WHERE id = ?",
        [
            seen.db_value(max(row.last_seen_at, report.created_at)),
            seen.db_value(min(row.first_seen_at, report.created_at)),
            row.id,
        ],
    )
    verdict, detail = _verdict(canonical, report, settings)
    if verdict == "regression":
        _regress(canonical, report, detail, now)
    else:
        _count(canonical, row, report, verdict, now, settings)
    return Created(
        report=report, created=True, deduplicated=True, canonical=canonical, regressed=verdict == "regression"
    )


def _verdict(canonical: BugReport, report: BugReport, settings: Settings) -> tuple[str, dict[str, Any]]:
    if canonical.status not in DONE_STATUSES:
        return "duplicate", {}
    if canonical.status == "closed" and canonical.close_reason in ("wont_fix", "duplicate"):
        return canonical.close_reason, {}
    resolved_at = canonical.resolved_at or canonical.updated_at
    if report.created_at <= resolved_at:
        return "late_arrival", {}
    env = report.environment or canonical.environment
    fix_sha = canonical.fixed_in_release
    if fix_sha is None:
        if not Release.select().where(Release.environment == (env or "production")).exists():
            if report.created_at - resolved_at <= settings.dedup_window:
                return "within_window", {}
            return "regression", {}
        fix = releases.first_release_after(resolved_at, env)
        if fix is None:
            return "fix_not_deployed", {}
        fix_sha = fix.sha
    fix_time = releases.deployed_at(fix_sha, env)
    detail = {"fix_release": fix_sha}
    if fix_time is not None:
        seen_time = releases.deployed_at(report.release_sha, env) if report.release_sha else None
        if seen_time is not None and seen_time < fix_time:
            return "older_release", detail
        if report.release_sha is None and report.created_at < fix_time:
            return "before_fix_deployed", detail
    return "regression", detail


def _regress(canonical: BugReport, report: BugReport, detail: dict[str, Any], now: datetime) -> None:
    from_status = canonical.status
    guarded_update(canonical, None, now, status=REOPEN_STATUS, resolved_at=None, close_reason=None)
    fix = detail.get("fix_release")
    body = f"regressed: report #{report.number} from release {report.release_sha or 'unknown'}"
    if fix:
        body += f"; the fix in release {fix} did not hold"
    record_event(
        canonical,
        "regressed",
        "system",
        at=now,
        from_status=from_status,
        to_status=REOPEN_STATUS,
        body=body,
        data={"report": report.number, "report_id": str(report.id), "release_sha": report.release_sha, **detail},
    )


def _count(
    canonical: BugReport, row: BugReportDedup, report: BugReport, verdict: str, now: datetime, settings: Settings
) -> None:
    last = row.last_event_at
    if last is not None and (now - last).total_seconds() < settings.occurrence_event_seconds:
        return
    BugReportDedup.update(last_event_at=now).where(BugReportDedup.id == row.id).execute()
    record_event(
        canonical,
        "occurrence",
        "system",
        at=now,
        data={
            "report": report.number,
            "occurrences": row.occurrences + 1,
            "verdict": verdict,
            "fingerprint": row.fingerprint,
        },
    )


def group_occurrences(canonical: BugReport) -> dict[str, Any]:
    """Occurrences, first and last seen over every fingerprint routed to ``canonical``."""
    rows = list(BugReportDedup.select().where(BugReportDedup.canonical == canonical.id))
    if not rows:
        return {
            "occurrences": 1,
            "first_seen_at": canonical.created_at,
            "last_seen_at": canonical.created_at,
            "fingerprints": [],
        }
    return {
        "occurrences": sum(r.occurrences for r in rows),
        "first_seen_at": min(r.first_seen_at for r in rows),
        "last_seen_at": max(r.last_seen_at for r in rows),
        "fingerprints": rows,
    }


def merge(source_ref: Any, target_ref: Any, actor: str, *, now: datetime | None = None) -> BugReport:
    """Fold the group of ``source_ref`` into the group of ``target_ref``; returns the target canonical."""
    from bugdesk.clock import utcnow

    actor = require_actor(actor)
    now = now or utcnow()
    with transaction():
        source = canonical_of(get_report(source_ref, for_update=True))
        target = canonical_of(get_report(target_ref, for_update=True))
        if source.id == target.id:
            raise ValidationError(f"#{source.number} and #{target.number} are already in one group")
        moved = BugReport.update(duplicate_of=target.id).where(BugReport.duplicate_of == source.id).execute()
        rows = BugReportDedup.update(canonical=target.id).where(BugReportDedup.canonical == source.id).execute()
        # merged_into marks a human decision that a regroup must keep.
        guarded_update(
            source, None, now, duplicate_of=target.id, details={**(source.details or {}), "merged_into": target.number},
            claimed_by=None, claim_token_hash=None, claim_expires_at=None,
        )  # fmt: skip
        source.duplicate_of_id = target.id
        guarded_update(target, None, now)
        data = {"source": source.number, "target": target.number, "moved_duplicates": moved, "moved_fingerprints": rows}
        record_event(source, "merged", actor, at=now, body=f"merged into #{target.number}", data=data)
        record_event(target, "merged", actor, at=now, body=f"#{source.number} merged in", data=data)
        return target


def split(ref: Any, actor: str, *, now: datetime | None = None) -> BugReport:
    """Take a report out of its group: it becomes its own canonical and never re-merges silently.

    Its fingerprint keeps routing to the old group (later occurrences still
    land there), which is what makes the split sticky.
    """
    from bugdesk.clock import utcnow

    actor = require_actor(actor)
    now = now or utcnow()
    with transaction():
        report = get_report(ref, for_update=True)
        if report.duplicate_of_id is None:
            raise ValidationError(
                f"#{report.number} is a canonical report, not a duplicate; split one of its duplicates instead"
            )
        old = BugReport.get_by_id(report.duplicate_of_id)
        details = dict(report.details or {})
        details["split_from"] = old.number
        guarded_update(report, None, now, duplicate_of=None, details=details)
        report.duplicate_of_id = None
        if report.fingerprint:
            (
                BugReportDedup.update(occurrences=BugReportDedup.occurrences - 1)
                .where((BugReportDedup.fingerprint == report.fingerprint) & (BugReportDedup.occurrences > 1))
                .execute()
            )
        data = {"report": report.number, "from": old.number}
        record_event(report, "split", actor, at=now, body=f"split out of #{old.number}", data=data)
        record_event(old, "split", actor, at=now, body=f"#{report.number} split out", data=data)
        return report
