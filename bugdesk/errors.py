"""The error hierarchy every surface maps to an exit code or an HTTP status.

Each error carries a message a person or an agent can act on: what was wrong
and, where there is one, what to do instead.
"""

from __future__ import annotations

from typing import Any


class BugdeskError(Exception):
    """Base class: ``str(err)`` is the actionable message, ``title`` a short label."""

    title = "bugdesk error"
    http_status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(BugdeskError):
    title = "configuration error"


class SchemaError(BugdeskError):
    title = "database schema not up to date"
    http_status = 503


class ValidationError(BugdeskError):
    """Bad input; ``details['field']`` names the offending field when there is one."""

    title = "invalid input"
    http_status = 422


class NotFound(BugdeskError):
    title = "not found"
    http_status = 404


class IllegalTransition(BugdeskError):
    """A status move the lifecycle does not allow; ``details['allowed']`` lists the targets."""

    title = "illegal status transition"
    http_status = 409


class StaleVersion(BugdeskError):
    """The caller read an older version than the one stored: re-read and retry."""

    title = "stale version"
    http_status = 412


class ClaimConflict(BugdeskError):
    """The report is claimed by someone else, or the claim token is wrong or expired."""

    title = "claim conflict"
    http_status = 409


class QueueEmpty(BugdeskError):
    title = "nothing to claim"
    http_status = 404


class AuthError(BugdeskError):
    title = "unauthorized"
    http_status = 401


class ScopeError(BugdeskError):
    title = "forbidden"
    http_status = 403
