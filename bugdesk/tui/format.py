"""Provides compact, human-readable times and labels shared by the dashboard and the CLI tables.

Pure functions only: no Textual, no database access (Rich text at most).
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from bugdesk.models import BugReportEvent

SEVERITY_SHORT = {"critical": "CRIT", "high": "HIGH", "medium": "MED", "low": "LOW"}
"""Four-character severity labels: the list column stays narrow at 80 columns."""

STATUS_SHORT = {
    "new": "new",
    "triaged": "triaged",
    "in_progress": "in prog",
    "awaiting_verification": "verify",
    "resolved": "resolved",
    "closed": "closed",
}
"""Status labels that fit an eight-character column."""

SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}
"""Rich styles per severity, shared by the CLI tables and the dashboard."""


def duration(seconds: float) -> str:
    """``seconds`` as at most two units: ``45s``, ``12m``, ``4h05m``, ``3d04h``, ``120d``."""
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days >= 100:
        return f"{days}d"
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def age(created_at: datetime, now: datetime) -> str:
    """How long ago ``created_at`` was, in one unit (``45s``, ``12m``, ``5h``, ``3d``, ``14w``)."""
    seconds = max(0, int((now - created_at).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86_400:
        return f"{seconds // 3600}h"
    days = seconds // 86_400
    return f"{days}d" if days < 100 else f"{days // 7}w"


def sla_left(sla_due_at: datetime | None, now: datetime, *, is_open: bool = True) -> tuple[str, bool]:
    """The SLA countdown and whether it is breached; done reports have no countdown (``-``)."""
    if sla_due_at is None or not is_open:
        return "-", False
    left = (sla_due_at - now).total_seconds()
    if left < 0:
        return "-" + duration(left), True
    return duration(left), False


def when(value: datetime | None) -> str:
    """A timestamp as ``2024-05-01 12:34`` (UTC), or ``-``."""
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def describe_event(event: BugReportEvent) -> Text:
    """One event as a line: the status change if any, then its body or the interesting data."""
    text = Text()
    if (event.from_status or event.to_status) and event.from_status != event.to_status:
        text.append(f"{event.from_status or '∅'} → {event.to_status} ", style="bold")
    data = event.data or {}
    if event.body:
        text.append(event.body)
    elif event.kind in ("triaged", "assigned") and data.get("changes"):
        # The status change is already shown; the SLA time follows from the severity.
        changes = [(k, old, new) for k, (old, new) in data["changes"].items() if k not in ("status", "sla_due_at")]
        text.append(", ".join(f"{k.removesuffix('_id')}: {old or '-'} → {new or '-'}" for k, old, new in changes))
    elif event.kind == "occurrence":
        text.append(f"#{data.get('report')} counted ({data.get('verdict')}), {data.get('occurrences')} seen")
    elif event.kind == "claimed" and data.get("expires_at"):
        text.append(f"lease until {data['expires_at'][:16].replace('T', ' ')}")
    elif event.kind == "agent_run":
        text.append(f"run {data.get('outcome', '')}")
    return text
