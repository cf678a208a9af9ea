"""Provides the dashboard's app-wide messages: results of database work, posted by workers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from bugdesk.tui.store import ActionResult, ReportDetail, RowsPage


@dataclass
class SummaryLoaded(Message):
    """Fresh header counts (``queries.status_summary``)."""

    summary: dict[str, Any]

    def can_replace(self, message: Message) -> bool:
        # Only the latest counts matter when several queue up.
        return isinstance(message, SummaryLoaded)


@dataclass
class RowsLoaded(Message):
    """Rows for the report list.

    ``mode`` says what to do with them: ``replace`` (a new query), ``append`` (the next page)
    or ``refresh`` (the same rows re-read after a change: keep selection and scroll).
    ``generation`` lets the list drop answers to a query it no longer shows.
    """

    generation: int
    page: RowsPage
    mode: str


@dataclass
class DetailLoaded(Message):
    """The detail of one report, read or re-read."""

    detail: ReportDetail


@dataclass
class ActionDone(Message):
    """A change went through the service layer; ``result.detail`` is the report's new state."""

    result: ActionResult


@dataclass
class DatabaseChanged(Message):
    """Someone else wrote to the database (an agent claimed a report, an import ran)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DatabaseChanged)
