"""Replaying a fingerprint algorithm over stored reports: preview the group changes, then apply them.

Manual decisions survive a regroup: a report split out by hand stays on its
own, and a group merged by hand stays merged. Applying is only allowed with
the algorithm the create path uses, so routing and stored groups agree.
Changes are written in checkpointed batches (one transaction each, with an
event per moved report); a run that stops part-way is finished by running it
again, since the plan is recomputed from the stored state.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bugdesk import fingerprint
from bugdesk.clock import utcnow
from bugdesk.errors import ValidationError
from bugdesk.models import BugReport, BugReportDedup
from bugdesk.service._base import guarded_update, record_event, transaction
from bugdesk.service.dedup import signal_from

ACTOR = "regroup"
_TEXT = ("title", "description", "stacktrace", "exception_type", "component", "route", "details")


@dataclass
class _Row:
    id: uuid.UUID
    number: int
    title: str
    created_at: datetime
    duplicate_of: uuid.UUID | None
    fingerprint: str | None
    new_hash: str
    split: bool
    merged_into: int | None


@dataclass
class RegroupPlan:
    algorithm: str
    reports: int = 0
    current_groups: int = 0
    new_groups: int = 0
    splits: list[dict[str, Any]] = field(default_factory=list)
    merges: list[dict[str, Any]] = field(default_factory=list)
    moves: dict[uuid.UUID, uuid.UUID | None] = field(default_factory=dict)  # report -> new duplicate_of
    hashes: dict[uuid.UUID, str] = field(default_factory=dict)
    fingerprints: dict[str, Any] = field(default_factory=dict)  # hash -> Fingerprint (for dedup rows)

    def summary(self, examples: int = 5) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm,
            "reports": self.reports,
            "current_groups": self.current_groups,
            "new_groups": self.new_groups,
            "groups_that_split": len(self.splits),
            "groups_that_merge": len(self.merges),
            "reports_that_move": len(self.moves),
            "split_examples": self.splits[:examples],
            "merge_examples": self.merges[:examples],
        }


def _load(algorithm: str, progress: Callable[[int], None] | None, fps: dict[str, Any]) -> list[_Row]:
    rows: list[_Row] = []
    last = 0
    while True:
        batch = list(BugReport.select().where(BugReport.number > last).order_by(BugReport.number).limit(1000))
        if not batch:
            return rows
        for r in batch:
            fp = fingerprint.compute(signal_from({name: getattr(r, name) for name in _TEXT}), algorithm)
            fps.setdefault(fp.hash, fp)
            details = r.details or {}
            rows.append(_Row(r.id, r.number, r.title, r.created_at, r.duplicate_of_id, r.fingerprint, fp.hash,
                             "split_from" in details, details.get("merged_into")))  # fmt: skip
        last = batch[-1].number
        if progress:
            progress(len(batch))


def _find(parent: dict, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def plan_regroup(algorithm: str = fingerprint.CURRENT, progress: Callable[[int], None] | None = None) -> RegroupPlan:
    """What replaying ``algorithm`` would change: groups that split, groups that merge, reports that move."""
    if algorithm not in fingerprint.ALGORITHMS:
        raise ValidationError(
            f"unknown algorithm {algorithm!r}; known: {', '.join(fingerprint.ALGORITHMS)}", field="algorithm"
        )
    plan = RegroupPlan(algorithm=algorithm)
    rows = _load(algorithm, progress, plan.fingerprints)
    by_id = {r.id: r for r in rows}
    by_number = {r.number: r for r in rows}

    def current(r: _Row) -> uuid.UUID:
        seen = set()
        while r.duplicate_of is not None and r.duplicate_of in by_id and r.id not in seen:
            seen.add(r.id)
            r = by_id[r.duplicate_of]
        return r.id

    now_canon = {r.id: current(r) for r in rows}
    parent = {r.id: r.id for r in rows}
    first_with_hash: dict[str, uuid.UUID] = {}
    for r in rows:
        if r.split:
            continue  # a manual split never re-merges
        other = first_with_hash.setdefault(r.new_hash, r.id)
        parent[_find(parent, r.id)] = _find(parent, other)
    for r in rows:
        target = by_number.get(r.merged_into) if r.merged_into else None
        if target is not None:  # a manual merge stays merged
            parent[_find(parent, r.id)] = _find(parent, target.id)
    members: dict[uuid.UUID, list[_Row]] = defaultdict(list)
    for r in rows:
        members[_find(parent, r.id)].append(r)
    new_canon: dict[uuid.UUID, uuid.UUID] = {}
    for group in members.values():
        canon_members = [m for m in group if now_canon[m.id] == m.id]
        head = min(canon_members or group, key=lambda m: (m.created_at, m.number))
        for m in group:
            new_canon[m.id] = head.id
    plan.reports = len(rows)
    plan.current_groups = len(set(now_canon.values()))
    plan.new_groups = len(members)
    old_to_new: dict[uuid.UUID, set] = defaultdict(set)
    new_to_old: dict[uuid.UUID, set] = defaultdict(set)
    for r in rows:
        old_to_new[now_canon[r.id]].add(new_canon[r.id])
        new_to_old[new_canon[r.id]].add(now_canon[r.id])
        wanted = None if new_canon[r.id] == r.id else new_canon[r.id]
        if wanted != r.duplicate_of:
            plan.moves[r.id] = wanted
        if r.new_hash != r.fingerprint:
            plan.hashes[r.id] = r.new_hash
    for old, news in old_to_new.items():
        if len(news) > 1:
            plan.splits.append({"canonical": by_id[old].number, "title": by_id[old].title,
                                "into": sorted(by_id[n].number for n in news)})  # fmt: skip
    for new, olds in new_to_old.items():
        if len(olds) > 1:
            plan.merges.append({"canonical": by_id[new].number, "title": by_id[new].title,
                                "from": sorted(by_id[o].number for o in olds)})  # fmt: skip
    plan.splits.sort(key=lambda s: -len(s["into"]))
    plan.merges.sort(key=lambda m: -len(m["from"]))
    return plan


def apply_regroup(
    plan: RegroupPlan,
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> int:
    """Write ``plan``: move reports between groups and rebuild the dedup rows. Returns reports moved."""
    if plan.algorithm != fingerprint.CURRENT:
        raise ValidationError(
            f"only the current algorithm ({fingerprint.CURRENT}) can be applied; "
            f"{plan.algorithm} can be previewed with --dry-run",
            field="algorithm",
        )
    changed = sorted(set(plan.moves) | set(plan.hashes), key=str)
    for start in range(0, len(changed), batch_size):
        with transaction():
            stamp = now or utcnow()
            for report_id in changed[start : start + batch_size]:
                report = BugReport.get_by_id(report_id)
                changes: dict[str, Any] = {}
                if report_id in plan.hashes:
                    changes["fingerprint"] = plan.hashes[report_id]
                if report_id in plan.moves:
                    changes["duplicate_of"] = plan.moves[report_id]
                before = report.duplicate_of_id
                guarded_update(report, None, stamp, **changes)
                if report_id in plan.moves:
                    target = plan.moves[report_id]
                    kind = "merged" if target is not None else "split"
                    record_event(report, kind, ACTOR, at=stamp, body=f"regrouped by fingerprint {plan.algorithm}",
                                 data={"from": str(before) if before else None,
                                       "to": str(target) if target else None, "regroup": True})  # fmt: skip
        if progress:
            progress(min(batch_size, len(changed) - start))
    _rebuild_dedup_rows(plan)
    return len(plan.moves)


def _rebuild_dedup_rows(plan: RegroupPlan) -> None:
    """One dedup row per fingerprint, pointing at its group's canonical, with counts from the reports."""
    with transaction():
        stats: dict[str, dict[str, Any]] = {}
        query = BugReport.select(BugReport.id, BugReport.duplicate_of, BugReport.fingerprint, BugReport.created_at)
        for r in query.where(BugReport.fingerprint.is_null(False)).iterator():
            s = stats.setdefault(r.fingerprint, {"n": 0, "first": r.created_at, "last": r.created_at,
                                                 "canon": defaultdict(int)})  # fmt: skip
            s["n"] += 1
            s["first"], s["last"] = min(s["first"], r.created_at), max(s["last"], r.created_at)
            s["canon"][r.duplicate_of_id or r.id] += 1
        for s in stats.values():
            # The group most of the fingerprint's reports belong to (a split-out report is outvoted).
            s["canon"] = max(s["canon"].items(), key=lambda item: item[1])[0]
        BugReportDedup.delete().where(BugReportDedup.fingerprint.not_in(list(stats) or [""])).execute()
        for hash_, s in stats.items():
            fp = plan.fingerprints.get(hash_)
            row = BugReportDedup.get_or_none(BugReportDedup.fingerprint == hash_)
            if row is None and fp is not None:
                BugReportDedup.create(fingerprint=hash_, canonical=s["canon"], algorithm=fp.algorithm, kind=fp.kind,
                                      signature=fp.signature, exception_type=fp.exception_type,
                                      frames=list(fp.frames) or None, component=fp.component, route=fp.route,
                                      occurrences=s["n"], first_seen_at=s["first"], last_seen_at=s["last"])  # fmt: skip
            elif row is not None:
                row.canonical, row.occurrences = s["canon"], s["n"]
                row.first_seen_at, row.last_seen_at = s["first"], s["last"]
                row.save()
