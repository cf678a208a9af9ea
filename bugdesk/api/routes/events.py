"""``/api/bug-reports/{ref}/events``: a report's history, and notes and agent logs attached to it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from bugdesk import payload, queries, service
from bugdesk.api.deps import DatabaseRoute, Reader, Writer
from bugdesk.api.routes.reports import RefPath
from bugdesk.api.schemas import AUTH, BODY, EventPublic, NoteCreate, problems
from bugdesk.clock import utcnow

router = APIRouter(prefix="/api/bug-reports", tags=["events"], route_class=DatabaseRoute)


@router.get(
    "/{ref}/events", response_model=list[EventPublic], summary="A report's events", responses=problems(*AUTH, 404)
)
def list_events(ref: RefPath, actor: Reader, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """The latest `limit` events (created, claimed, notes, agent logs, status changes...), oldest first."""
    report = payload.load_report(ref)
    return [payload.event_json(e) for e in queries.recent_events(report, limit)]


@router.post(
    "/{ref}/events",
    status_code=201,
    response_model=EventPublic,
    summary="Add a note or agent log",
    responses=problems(*AUTH, 404, *BODY),
)
def add_event(ref: RefPath, body: NoteCreate, actor: Writer) -> dict[str, Any]:
    """Attach a `note` or an `agent_log` entry (with optional structured `data`); the report is unchanged."""
    report = payload.load_report(ref)
    now = utcnow()
    event_id = service.add_note(report.id, actor, body.body, kind=body.kind, data=body.data, now=now)
    return {
        "id": event_id,
        "report_id": str(report.id),
        "kind": body.kind,
        "actor": actor,
        "from_status": None,
        "to_status": None,
        "body": body.body,
        "data": body.data,
        "created_at": payload.iso(now),
    }
