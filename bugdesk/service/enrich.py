"""The enrichment job: fill what reports lack from their stack and the releases timeline.

Idempotent and resumable: it only fills empty fields, so a second run finds
nothing to do, and a run that stops part-way continues where the data says.
Each enriched report gets one `enriched` event listing what was filled, in the
same transaction as the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import fn

from bugdesk import fingerprint
from bugdesk.clock import utcnow
from bugdesk.models import BugReport, Release
from bugdesk.service import releases
from bugdesk.service._base import guarded_update, record_event, transaction

ACTOR = "enricher"


@dataclass
class EnrichStats:
    scanned: int = 0
    enriched: int = 0
    filled: dict[str, int] = field(default_factory=dict)


def stack_of(report: BugReport) -> tuple[fingerprint.ParsedTrace | None, tuple[fingerprint.Frame, ...]]:
    """Structured frames when stored, else those of the traceback text (or one pasted in the description)."""
    details = report.details or {}
    if isinstance(details.get("frames"), list) and details["frames"]:
        return None, fingerprint.frames_from_list(details["frames"])
    text = report.stacktrace or report.description
    parsed = fingerprint.parse_traceback(text) if text else None
    if parsed is None or parsed.last is None:
        return parsed, ()
    return parsed, parsed.last.frames


def _release_for(report: BugReport) -> str | None:
    version = (report.details or {}).get("release")
    if version:
        match = (
            Release.select(Release.sha)
            .where((Release.version == str(version)) & (Release.environment == (report.environment or "production")))
            .first()
        ) or Release.select(Release.sha).where(Release.version == str(version)).first()
        if match:
            return match.sha
    live = releases.release_at(report.created_at, report.environment)
    return live.sha if live else None


def fills_for(report: BugReport, recompute_algorithm: str | None = None) -> dict[str, Any]:
    """What enrichment would set on ``report`` (empty when nothing is missing)."""
    fills: dict[str, Any] = {}
    if not report.release_sha:
        sha = _release_for(report)
        if sha:
            fills["release_sha"] = sha
    parsed, frames = stack_of(report)
    if not report.exception_type and parsed is not None and parsed.last and parsed.last.type:
        fills["exception_type"] = parsed.last.type.rsplit(".", 1)[-1][:255]
    if frames:
        if not report.component:
            component = fingerprint.component_from_frames(frames)
            if component:
                fills["component"] = component
        details = report.details or {}
        if "repo_path_hints" not in details:
            hints = fingerprint.repo_path_hints(frames)
            if hints:
                fills["details"] = {**details, "repo_path_hints": hints}
    stale = recompute_algorithm is not None and report.fingerprint is not None
    if report.fingerprint is None or stale:
        from bugdesk.service.dedup import signal_from

        values = {name: getattr(report, name) for name in (
            "title", "description", "stacktrace", "exception_type", "component", "route", "details")}  # fmt: skip
        fp = fingerprint.compute(signal_from(values), recompute_algorithm or fingerprint.CURRENT)
        if fp.hash != report.fingerprint:
            fills["fingerprint"] = fp.hash
    return fills


def _batches(batch_size: int) -> Iterator[list[BugReport]]:
    last = 0
    while True:
        batch = list(BugReport.select().where(BugReport.number > last).order_by(BugReport.number).limit(batch_size))
        if not batch:
            return
        yield batch
        last = batch[-1].number


def enrich(
    *,
    batch_size: int = 500,
    recompute_algorithm: str | None = None,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> EnrichStats:
    """Fill release, component, exception type, repo path hints and fingerprints where missing.

    A fingerprint is only written on the report; moving it between groups is
    `regroup`'s job, which shows the change before making it.
    """
    if recompute_algorithm is not None and recompute_algorithm not in fingerprint.ALGORITHMS:
        from bugdesk.errors import ValidationError

        raise ValidationError(
            f"unknown fingerprint algorithm {recompute_algorithm!r}; known: {', '.join(fingerprint.ALGORITHMS)}",
            field="algorithm",
        )
    stats = EnrichStats()
    for batch in _batches(batch_size):
        planned = [(r, fills_for(r, recompute_algorithm)) for r in batch]  # parsing outside the write lock
        with transaction():
            stamp = now or utcnow()
            for report, fills in planned:
                if not fills:
                    continue
                guarded_update(report, None, stamp, **fills)
                names = sorted(fills)
                data = {k: v for k, v in fills.items() if k != "details"}
                if "details" in fills:
                    data["repo_path_hints"] = fills["details"]["repo_path_hints"]
                record_event(report, "enriched", ACTOR, at=stamp, body="filled " + ", ".join(names), data=data)
                stats.enriched += 1
                for name in names:
                    stats.filled[name] = stats.filled.get(name, 0) + 1
        stats.scanned += len(batch)
        if progress:
            progress(len(batch))
    return stats


def total_reports() -> int:
    return BugReport.select(fn.COUNT(BugReport.id)).scalar() or 0
