"""The service layer: the only code that writes. Each function is one transaction with its events."""

from bugdesk.service.claims import (
    Claim,
    QueueFilter,
    claim,
    claim_next,
    expire_leases,
    heartbeat,
    release,
)
from bugdesk.service.reports import Created, add_note, create_report, move, reopen, resolve, triage

__all__ = [
    "Claim",
    "Created",
    "QueueFilter",
    "add_note",
    "claim",
    "claim_next",
    "create_report",
    "expire_leases",
    "heartbeat",
    "move",
    "release",
    "reopen",
    "resolve",
    "triage",
]
