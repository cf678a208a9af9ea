"""Legacy ``duplicate_of`` links resolved once all reports are in (see ``bugdesk.service.imports``).

A batch links a new report to the target of its explicit legacy ``duplicate_of`` when that
target is already imported, and leaves other links ``pending``: the target may come in a
later batch, file or run. :func:`resolve_links` settles them after the batches, and retries
``dangling`` links whose target has come since; each change to a report's ``duplicate_of``
leaves an ``updated`` event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bugdesk.clock import utcnow
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.models_sync import (
    LINK_CONFLICT,
    LINK_CYCLE,
    LINK_DANGLING,
    LINK_LINKED,
    LINK_PENDING,
    SyncEntry,
    SyncReport,
)
from bugdesk.service._base import transaction
from bugdesk.service._fast import execute
from bugdesk.service.import_rows import ACTOR, _py

__all__ = ["LinkResult", "resolve_links"]

_MAX_CHAIN = 64  # duplicate_of hops followed before giving up (a chain, not a loop)


# --- links, once all reports are in ---------------------------------------------------------


@dataclass
class LinkResult:
    linked: int = 0
    dangling: int = 0
    cycles: int = 0
    conflicts: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)


def resolve_links(*, batch_size: int = 500, now: datetime | None = None, max_warnings: int = 20) -> LinkResult:
    """Resolve pending legacy ``duplicate_of`` links (and earlier dangling ones whose target came).

    Each batch is one transaction. A link whose target exists nowhere is dropped with a
    warning (the report keeps its fingerprint grouping); a link that would close a loop of
    explicit links is dropped likewise. When the target was grouped under the linking
    report by fingerprint, that grouping gives way: the explicit link wins. A report changed
    in bugdesk since it was imported keeps its grouping (state ``conflict``).
    """
    now = now or utcnow()
    result = LinkResult()
    while True:
        with transaction():
            cursor = execute(
                "SELECT s.report_id, r.legacy_id, s.link_target, s.link_state, s.report_version, r.version, "
                "r.duplicate_of_id, t.id, t.number FROM sync_reports s JOIN bug_reports r ON r.id = s.report_id "
                "LEFT JOIN bug_reports t ON t.legacy_id = s.link_target "
                # The first condition repeats the partial index's predicate word for word, so SQLite
                # reads only open links (bound parameters would make it scan every imported report).
                "WHERE s.link_state IN ('pending', 'dangling') AND (s.link_state = ? OR t.id IS NOT NULL) "
                "ORDER BY s.report_id LIMIT ?",
                [LINK_PENDING, batch_size],
            )
            rows = cursor.fetchall()
            if not rows:
                return result
            for row in rows:
                _link(row, result, now, max_warnings)


def _link(row: tuple[Any, ...], result: LinkResult, now: datetime, max_warnings: int) -> None:
    report_id, legacy_id, target_legacy, _state, synced_version, version, parent, target_id, target_number = row
    report_id = _py(BugReport, "id", report_id)
    target_id = _py(BugReport, "id", target_id) if target_id is not None else None
    parent = _py(BugReport, "id", parent) if parent is not None else None

    def settle(state: str, warning: str | None = None) -> None:
        execute(
            "UPDATE sync_reports SET link_state = ?, updated_at = ? WHERE report_id = ?",
            [state, SyncReport.updated_at.db_value(now), BugReport.id.db_value(report_id)],
        )
        if warning is not None:
            if len(result.warnings) < max_warnings:
                result.warnings.append({"legacy_id": legacy_id, "message": warning})
            _note_warning(report_id, warning, now)

    if target_id is None:
        result.dangling += 1
        settle(LINK_DANGLING, f"duplicate_of {target_legacy!r} names no imported report; link dropped")
        return
    if version != synced_version:
        result.conflicts += 1
        settle(LINK_CONFLICT, "report changed in bugdesk since import; legacy duplicate_of link not applied")
        return
    if parent == target_id:
        settle(LINK_LINKED)
        result.linked += 1
        return
    hop = _hop_into(target_id, report_id)
    if hop is not None:
        hop_id, hop_explicit = hop
        if hop_explicit:
            result.cycles += 1
            settle(LINK_CYCLE, f"duplicate_of {target_legacy!r} would close a loop of duplicate links; link dropped")
            return
        # The target was grouped under this report by fingerprint; the explicit link says the
        # target came first, so that grouping gives way.
        _relink(hop_id, None, f"no longer grouped under the report that names it as its original ({legacy_id})", now)
    body = f"duplicate of legacy report {target_legacy}, linked once all reports were in"
    _relink(report_id, target_id, body, now, target_number)
    _absorb(report_id, legacy_id, now)
    settle(LINK_LINKED)
    result.linked += 1


def _absorb(report_id: uuid.UUID, legacy_id: str, now: datetime) -> None:
    """A report that just became a duplicate hands its group over, as a merge does: its dedup rows
    and the reports grouped under it move to the new canonical; explicit legacy links stay."""
    key = BugReport.id.db_value(report_id)
    if not execute(
        "SELECT 1 FROM bug_report_dedup WHERE canonical_id = ? UNION ALL SELECT 1 FROM bug_reports "
        "WHERE duplicate_of_id = ? LIMIT 1",
        [key, key],
    ).fetchone():
        return
    root = _root_of(report_id)
    execute("UPDATE bug_report_dedup SET canonical_id = ? WHERE canonical_id = ?", [BugReport.id.db_value(root), key])
    members = execute(
        "SELECT r.id, s.link_state, t.id FROM bug_reports r LEFT JOIN sync_reports s ON s.report_id = r.id "
        "LEFT JOIN bug_reports t ON t.legacy_id = s.link_target WHERE r.duplicate_of_id = ?",
        [key],
    ).fetchall()
    for member, link_state, target in members:
        if link_state == LINK_LINKED and target is not None and _py(BugReport, "id", target) == report_id:
            continue  # an explicit legacy link to this report stays as the legacy data says
        member = _py(BugReport, "id", member)
        new_parent = root if root != member else None
        _relink(member, new_parent, f"regrouped: its group's report {legacy_id} is a duplicate of another report", now)


def _root_of(report_id: uuid.UUID) -> uuid.UUID:
    current, seen = report_id, {report_id}
    for _ in range(_MAX_CHAIN):
        row = execute("SELECT duplicate_of_id FROM bug_reports WHERE id = ?", [BugReport.id.db_value(current)])
        parent = row.fetchone()
        if parent is None or parent[0] is None:
            return current
        parent_id = _py(BugReport, "id", parent[0])
        if parent_id in seen:
            return current
        seen.add(parent_id)
        current = parent_id
    return current


def _hop_into(start: uuid.UUID, report_id: uuid.UUID) -> tuple[uuid.UUID, bool] | None:
    """When the duplicate chain from ``start`` reaches ``report_id``: the report whose link points at it,
    and whether that link is an explicit legacy one."""
    current = start
    for _ in range(_MAX_CHAIN):
        found = execute(
            "SELECT r.duplicate_of_id, s.link_state, s.link_target, t.legacy_id FROM bug_reports r "
            "LEFT JOIN sync_reports s ON s.report_id = r.id LEFT JOIN bug_reports t ON t.id = r.duplicate_of_id "
            "WHERE r.id = ?",
            [BugReport.id.db_value(current)],
        ).fetchone()
        if found is None or found[0] is None:
            return None
        parent = _py(BugReport, "id", found[0])
        if parent == report_id:
            explicit = found[1] == LINK_LINKED and found[2] is not None and found[2] == found[3]
            return current, explicit
        current = parent
    return None


def _relink(
    report_id: uuid.UUID, target: uuid.UUID | None, body: str, now: datetime, target_number: int | None = None
) -> None:
    key = BugReport.id.db_value(report_id)
    old = execute("SELECT duplicate_of_id, version FROM bug_reports WHERE id = ?", [key]).fetchone()
    execute(
        "UPDATE bug_reports SET duplicate_of_id = ?, version = version + 1 WHERE id = ?",
        [BugReport.id.db_value(target) if target else None, key],
    )
    # The importer's own change: the report stays "as imported" for later legacy updates.
    execute(
        "UPDATE sync_reports SET report_version = report_version + 1 WHERE report_id = ? AND report_version = ?",
        [key, old[1]],
    )
    data: dict[str, Any] = {
        "duplicate_of": [str(_py(BugReport, "id", old[0])) if old[0] else None, str(target) if target else None]
    }
    if target_number is not None:
        data["duplicate_of_number"] = target_number
    execute(
        "INSERT INTO bug_report_events (report_id, kind, actor, body, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        [key, "updated", ACTOR, body, BugReportEvent.data.db_value(data), BugReportEvent.created_at.db_value(now)],
    )


def _note_warning(report_id: uuid.UUID, warning: str, now: datetime) -> None:
    """Add a link warning to the entry the report was imported from, where `sync report` shows it."""
    row = (
        SyncEntry.select(SyncEntry.id, SyncEntry.warnings)
        .join(
            SyncReport,
            on=(SyncReport.source_file == SyncEntry.file) & (SyncReport.source_position == SyncEntry.position),
        )
        .where(SyncReport.report == report_id)
        .first()
    )
    if row is None:
        return
    warnings = list(row.warnings or [])
    if warning not in warnings:
        warnings.append(warning)
        SyncEntry.update(warnings=warnings, updated_at=now).where(SyncEntry.id == row.id).execute()
