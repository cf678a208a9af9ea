"""Read queries shared by every surface: filtered, keyset-paginated lists and the status summary."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from peewee import SQL, fn

from bugdesk import validate
from bugdesk.clock import utcnow
from bugdesk.db import is_postgres
from bugdesk.errors import ValidationError
from bugdesk.lifecycle import DONE_STATUSES, OPEN_STATUSES, SEVERITIES, STATUSES
from bugdesk.models import OPEN_PREDICATE, PG_SEARCH_DOCUMENT, BugReport, BugReportEvent

SORTS = ("-created_at", "created_at", "-updated_at", "updated_at", "sla_due_at", "-sla_due_at",
         "number", "-number")  # fmt: skip
MAX_LIMIT = 500


@dataclass
class ReportFilter:
    status: list[str] = field(default_factory=list)  # values, or the alias "open"
    severity: list[str] = field(default_factory=list)
    category: list[str] = field(default_factory=list)
    component: list[str] = field(default_factory=list)
    assignee_id: str | None = None
    claimed_by: str | None = None
    sla_breached: bool = False
    needs_human: bool | None = None
    trace_id: str | None = None
    request_id: str | None = None
    release_sha: str | None = None
    fingerprint: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    include_duplicates: bool = False
    duplicates_of: Any = None
    q: str | None = None


@dataclass
class Page:
    items: list[BugReport]
    next_cursor: str | None


def expand_statuses(values: list[str]) -> tuple[list[str], bool]:
    """Statuses asked for, and whether they are exactly the open set (written to match the index)."""
    wanted: set[str] = set()
    for value in values:
        for part in str(value).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part == "open":
                wanted.update(OPEN_STATUSES)
            elif part in ("done", "closed_or_resolved"):
                wanted.update(DONE_STATUSES)
            else:
                wanted.add(validate.choice(part, "status", (*STATUSES, "open")))
    return sorted(wanted, key=STATUSES.index), wanted == set(OPEN_STATUSES)


def _split(values: list[str], name: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    out = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if part:
                out.append(validate.choice(part, name, allowed) if allowed else part)
    return out


def _check_text(flt: ReportFilter) -> None:
    for name in ("assignee_id", "claimed_by", "trace_id", "request_id", "release_sha", "fingerprint", "q"):
        validate.filter_text(getattr(flt, name), name)
    for name in ("category", "component"):
        for value in getattr(flt, name):
            validate.filter_text(str(value), name)


def apply_filter(query, flt: ReportFilter, now: datetime | None = None):
    _check_text(flt)
    statuses, only_open = expand_statuses(flt.status)
    if only_open or flt.sla_breached:
        # Written as NOT IN (done) so SQLite can match the partial indexes.
        query = query.where(OPEN_PREDICATE)
        if statuses and not only_open:
            query = query.where(BugReport.status.in_(statuses))
    elif statuses:
        query = query.where(BugReport.status.in_(statuses))
    if flt.duplicates_of is not None:
        query = query.where(BugReport.duplicate_of == flt.duplicates_of)
    elif not flt.include_duplicates:
        query = query.where(BugReport.duplicate_of.is_null())
    severities = _split(flt.severity, "severity", SEVERITIES)
    if len(severities) == 1:
        query = query.where(BugReport.severity == severities[0])
    elif severities:
        query = query.where(BugReport.severity.in_(severities))
    if categories := _split(flt.category, "category"):
        query = query.where(fn.LOWER(BugReport.category).in_([c.lower() for c in categories]))
    if components := _split(flt.component, "component"):
        query = query.where(BugReport.component.in_(components))
    for column, value in (
        (BugReport.assignee_id, flt.assignee_id),
        (BugReport.claimed_by, flt.claimed_by),
        (BugReport.trace_id, flt.trace_id and flt.trace_id.lower()),
        (BugReport.request_id, flt.request_id),
        (BugReport.release_sha, flt.release_sha and flt.release_sha.lower()),
        (BugReport.fingerprint, flt.fingerprint),
    ):
        if value:
            query = query.where(column == value)
    if flt.sla_breached:
        query = query.where(BugReport.sla_due_at < (now or utcnow()))
    if flt.needs_human is not None:
        query = query.where(BugReport.needs_human == flt.needs_human)
    if flt.created_after:
        query = query.where(BugReport.created_at >= flt.created_after)
    if flt.created_before:
        query = query.where(BugReport.created_at < flt.created_before)
    if flt.q:
        query = _search(query, flt.q)
    return query


def _search(query, text: str):
    """Full text over title, description and stack trace: every word must appear (SQLite FTS5, PostgreSQL GIN)."""
    words = [w for w in text.split() if w.strip('"')][:16]
    if not words:
        return query
    if is_postgres():
        return query.where(SQL(f"{PG_SEARCH_DOCUMENT} @@ plainto_tsquery('simple', %s)", [" ".join(words)]))
    # Each word as a quoted FTS5 phrase: user text can never be read as query syntax.
    match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    hits = SQL("(SELECT rowid FROM bug_reports_fts WHERE bug_reports_fts MATCH ?)", [match])
    return query.where(BugReport.number.in_(hits))


def _encode_cursor(sort: str, report: BugReport) -> str:
    value = getattr(report, sort.lstrip("-"))
    raw = json.dumps([sort, value.isoformat() if isinstance(value, datetime) else value, report.number])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cur_sort, value, number = json.loads(base64.urlsafe_b64decode(padded.encode()))
        # A cursor comes back from the client: bound what reaches SQL (64-bit integers, years 1..9999 in UTC).
        if cur_sort != sort or not isinstance(number, int) or not -(2**63) <= number < 2**63:
            raise ValueError
        if sort.lstrip("-") != "number":
            value = datetime.fromisoformat(value)
            if value.tzinfo is not None:
                value = value.astimezone(UTC)
        return value, number
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError, UnicodeDecodeError):
        raise ValidationError(
            "cursor is not valid for this listing: pass the next_cursor of the previous page unchanged, "
            "with the same sort",
            field="cursor",
        ) from None


def list_reports(
    flt: ReportFilter | None = None,
    *,
    sort: str = "-created_at",
    limit: int = 50,
    cursor: str | None = None,
    now: datetime | None = None,
) -> Page:
    """One page of reports; pass ``next_cursor`` back for the next. Keyset-paginated (no OFFSET)."""
    if sort not in SORTS:
        raise ValidationError(f"sort {sort!r} is not supported; use one of: {', '.join(SORTS)}", field="sort")
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    column = getattr(BugReport, sort.lstrip("-"))
    desc = sort.startswith("-")
    query = apply_filter(BugReport.select(), flt or ReportFilter(), now)
    if cursor:
        value, number = _decode_cursor(cursor, sort)
        if column is BugReport.number:
            query = query.where(column < number if desc else column > number)
        elif desc:
            query = query.where((column < value) | ((column == value) & (BugReport.number < number)))
        else:
            query = query.where((column > value) | ((column == value) & (BugReport.number > number)))
    if column is BugReport.number:
        order = [column.desc() if desc else column]
    else:
        order = [column.desc(), BugReport.number.desc()] if desc else [column, BugReport.number]
    items = list(query.order_by(*order).limit(limit + 1))
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=_encode_cursor(sort, items[-1]) if more else None)


def count_reports(flt: ReportFilter | None = None, *, now: datetime | None = None) -> int:
    return apply_filter(BugReport.select(), flt or ReportFilter(), now).count()


def recent_events(report: BugReport, limit: int = 50) -> list[BugReportEvent]:
    """The latest ``limit`` events, oldest first."""
    events = list(
        BugReportEvent.select()
        .where(BugReportEvent.report == report.id)
        .order_by(BugReportEvent.created_at.desc(), BugReportEvent.id.desc())
        .limit(limit)
    )
    return events[::-1]


def status_summary(now: datetime | None = None) -> dict[str, Any]:
    """Counts by status x severity (canonical reports), SLA breaches, oldest open, active claims."""
    now = now or utcnow()
    counts = {s: dict.fromkeys(SEVERITIES, 0) for s in STATUSES}
    rows = (
        # COUNT(*) lets SQLite answer from the covering partial index alone.
        BugReport.select(BugReport.status, BugReport.severity, fn.COUNT(SQL("*")).alias("n"))
        .where(BugReport.duplicate_of.is_null())
        .group_by(BugReport.status, BugReport.severity)
        .tuples()
    )
    for status, severity, n in rows:
        counts.setdefault(status, {}).setdefault(severity, 0)
        counts[status][severity] += n
    open_base = BugReport.select().where(OPEN_PREDICATE, BugReport.duplicate_of.is_null())
    breaches = {}
    for severity in SEVERITIES:
        breaches[severity] = open_base.where(BugReport.severity == severity, BugReport.sla_due_at < now).count()
    oldest = (
        open_base.select(BugReport.number, BugReport.title, BugReport.created_at).order_by(BugReport.created_at).first()
    )
    active_claims = (
        BugReport.select().where(BugReport.claimed_by.is_null(False), BugReport.claim_expires_at > now).count()
    )
    needs_human = open_base.where(BugReport.needs_human == True).count()  # noqa: E712
    duplicates = BugReport.select().where(BugReport.duplicate_of.is_null(False)).count()
    open_total = sum(counts[s][sev] for s in OPEN_STATUSES for sev in SEVERITIES)
    return {
        "generated_at": now.isoformat(),
        "counts": counts,
        "open": open_total,
        "open_by_severity": {sev: sum(counts[s][sev] for s in OPEN_STATUSES) for sev in SEVERITIES},
        "total": sum(sum(v.values()) for v in counts.values()),
        "duplicates": duplicates,
        "sla_breaches": sum(breaches.values()),
        "sla_breaches_by_severity": breaches,
        "oldest_open": None
        if oldest is None
        else {
            "number": oldest.number,
            "title": oldest.title,
            "created_at": oldest.created_at.isoformat(),
            "age_seconds": int((now - oldest.created_at).total_seconds()),
        },
        "active_claims": active_claims,
        "needs_human": needs_human,
    }
