"""JSON-ready dicts of reports, events and agent runs, shared by the API, MCP and the CLI.

``report_json`` is a report's own columns (DESIGN names; the claim token hash is never included).
``report_payload`` is what an agent needs to work on one report: the report plus its dedup group,
repo path hints from the stack trace, recent events, the current claim and earlier agent attempts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bugdesk import fingerprint, queries
from bugdesk.models import AgentRun, BugReport, BugReportDedup, BugReportEvent
from bugdesk.service import dedup
from bugdesk.service._base import get_report
from bugdesk.service._fast import compiled

# Scalar columns copied as they are, in DESIGN order.
_COLUMNS = (
    "number", "title", "description", "severity", "category", "status", "close_reason", "source",
    "reporter_id", "assignee_id", "component", "route", "environment", "exception_type", "stacktrace",
    "trace_id", "request_id", "release_sha", "fingerprint",
)  # fmt: skip
_LATER = (
    "resolution_notes",
    "resolution_commits",
    "fixed_in_release",
    "needs_human",
    "version",
    "legacy_id",
    "details",
)
_TIMES = ("created_at", "updated_at", "resolved_at", "sla_due_at")


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _uuid(value: Any) -> str | None:
    return str(value) if value is not None else None


def report_json(report: BugReport) -> dict[str, Any]:
    """A report's columns as JSON values; ``claim`` is ``{claimed_by, expires_at}`` or None."""
    data: dict[str, Any] = {"id": str(report.id)}
    values = report.__data__
    for name in _COLUMNS:
        data[name] = values.get(name)
    data["duplicate_of_id"] = _uuid(values.get("duplicate_of"))
    for name in _LATER:
        data[name] = values.get(name)
    data["needs_human"] = bool(data["needs_human"])
    for name in _TIMES:
        data[name] = iso(values.get(name))
    claimed_by = values.get("claimed_by")
    data["claim"] = (
        {"claimed_by": claimed_by, "expires_at": iso(values.get("claim_expires_at"))} if claimed_by else None
    )
    return data


def event_json(event: BugReportEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "report_id": _uuid(event.__data__.get("report")),
        "kind": event.kind,
        "actor": event.actor,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "body": event.body,
        "data": event.data,
        "created_at": iso(event.created_at),
    }


def run_json(run: AgentRun) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "report_id": _uuid(run.__data__.get("report")),
        "agent": run.agent,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "outcome": run.outcome,
        "commits": run.commits or [],
        "log": run.log,
    }


def agent_runs(report: BugReport) -> list[AgentRun]:
    """Every agent attempt at ``report``, oldest first."""
    sql = compiled(
        "agent_runs_of_report",
        lambda: AgentRun.select().where(AgentRun.report == uuid.UUID(int=0)).order_by(AgentRun.started_at, AgentRun.id),
    )
    return list(AgentRun.raw(sql, AgentRun.report.db_value(report.id)))


def repo_path_hints(report: BugReport) -> list[str]:
    """In-app files (``path:line``, innermost first) from the structured frames, else the parsed stack trace."""
    frames = (report.details or {}).get("frames")
    if isinstance(frames, list) and frames:
        return fingerprint.repo_path_hints(fingerprint.frames_from_list(frames))
    if report.stacktrace:
        parsed = fingerprint.parse_traceback(report.stacktrace)
        if parsed is not None:
            return fingerprint.repo_path_hints(frame for exc in parsed.exceptions for frame in exc.frames)
    return []


def dedup_json(report: BugReport, canonical: BugReport) -> dict[str, Any]:
    """The group ``report`` belongs to: its canonical, counts over every fingerprint, and why it was grouped."""
    group = dedup.group_occurrences(canonical)
    # The report's own fingerprint row is usually one of the group's; a split-out report's routes elsewhere.
    row = next((r for r in group["fingerprints"] if r.fingerprint == report.fingerprint), None)
    if row is None and report.fingerprint:
        row = BugReportDedup.get_or_none(BugReportDedup.fingerprint == report.fingerprint)
    return {
        "canonical": {"id": str(canonical.id), "number": canonical.number},
        "occurrences": group["occurrences"],
        "first_seen_at": iso(group["first_seen_at"]),
        "last_seen_at": iso(group["last_seen_at"]),
        "fingerprint": report.fingerprint,
        "algorithm": row.algorithm if row else None,
        "kind": row.kind if row else None,
        "signature": row.signature if row else None,
        "exception_type": row.exception_type if row else None,
        "frames": (row.frames or []) if row else [],
        "component": row.component if row else None,
        "route": row.route if row else None,
        "fingerprints": len(group["fingerprints"]),
    }


def report_payload(report: BugReport, *, events: int = 20) -> dict[str, Any]:
    """Everything an agent needs to work on ``report`` in one dict (see the module docstring)."""
    canonical = dedup.canonical_of(report) if report.duplicate_of_id is not None else report
    runs = agent_runs(report)
    data = report_json(report)
    data.update(
        merged_into=None if canonical.id == report.id else {"id": str(canonical.id), "number": canonical.number},
        dedup=dedup_json(report, canonical),
        repo_path_hints=repo_path_hints(report),
        events=[event_json(e) for e in queries.recent_events(report, events)],
        agent_runs=[run_json(r) for r in runs],
        attempts={
            "total": len(runs),
            "failed": sum(r.outcome == "failed" for r in runs),
            "running": sum(r.outcome == "running" for r in runs),
        },
    )
    return data


def load_report(ref: Any) -> BugReport:
    """The report named by ``ref`` (number, ``#42`` or UUID); NotFound otherwise."""
    return get_report(ref)
