"""Agent runs: one attempt by an agent at a report; failed runs count toward `needs_human`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from bugdesk import payload
from bugdesk.api.deps import DatabaseRoute, Reader, SettingsDep, Writer
from bugdesk.api.routes.reports import RefPath
from bugdesk.api.schemas import AUTH, BODY, RunFinish, RunPublic, problems
from bugdesk.service import runs

router = APIRouter(prefix="/api", tags=["runs"], route_class=DatabaseRoute)


@router.post(
    "/bug-reports/{ref}/runs",
    status_code=201,
    response_model=RunPublic,
    summary="Start an agent run",
    responses=problems(*AUTH, 404),
)
def start_run(ref: RefPath, actor: Writer) -> dict[str, Any]:
    """Record that this agent starts an attempt at the report; finish it with its outcome."""
    return payload.run_json(runs.start_agent_run(ref, actor))


@router.get(
    "/bug-reports/{ref}/runs",
    response_model=list[RunPublic],
    summary="A report's agent runs",
    responses=problems(*AUTH, 404),
)
def list_runs(ref: RefPath, actor: Reader) -> list[dict[str, Any]]:
    """Every agent attempt at the report, oldest first."""
    return [payload.run_json(r) for r in payload.agent_runs(payload.load_report(ref))]


@router.post(
    "/runs/{run_id}/finish",
    response_model=RunPublic,
    summary="Finish an agent run",
    responses=problems(*AUTH, 404, *BODY),
)
def finish_run(
    run_id: Annotated[str, Path(max_length=36, description="The run's UUID.")],
    body: RunFinish,
    actor: Writer,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Close a run as succeeded, failed or abandoned; after `max_agent_attempts` failures the report needs a human."""
    run = runs.finish_agent_run(run_id, body.outcome, commits=body.commits, log=body.log, settings=settings)
    return payload.run_json(run)
