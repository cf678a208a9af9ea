"""The vocabularies and the one transition table of a report's lifecycle."""

from __future__ import annotations

SEVERITIES = ("critical", "high", "medium", "low")
STATUSES = ("new", "triaged", "in_progress", "awaiting_verification", "resolved", "closed")
OPEN_STATUSES = ("new", "triaged", "in_progress", "awaiting_verification")
DONE_STATUSES = ("resolved", "closed")
# Statuses an agent may be handed by claim-next (in_progress ones are someone's work).
CLAIMABLE_STATUSES = ("new", "triaged")
SOURCES = ("user", "agent", "system")
CLOSE_REASONS = ("done", "wont_fix", "duplicate")
EVENT_KINDS = (
    "created", "triaged", "status_changed", "assigned", "claimed", "released", "lease_expired",
    "heartbeat", "note", "agent_log", "resolved", "reopened", "regressed", "merged", "split",
    "occurrence", "enriched", "imported", "updated", "flagged", "agent_run",
)  # fmt: skip

# from -> allowed targets. Any open status may be resolved or closed (won't-fix,
# duplicate); resolved and closed reports come back through a reopen.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "new": ("triaged", "in_progress", "resolved", "closed"),
    "triaged": ("new", "in_progress", "resolved", "closed"),
    "in_progress": ("triaged", "awaiting_verification", "resolved", "closed"),
    "awaiting_verification": ("in_progress", "resolved", "closed"),
    "resolved": ("closed", "triaged"),
    "closed": ("triaged",),
}

# Where a reopened report lands: it was looked at before, so it skips `new`.
REOPEN_STATUS = "triaged"


def allowed_targets(status: str) -> tuple[str, ...]:
    return TRANSITIONS.get(status, ())


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES
