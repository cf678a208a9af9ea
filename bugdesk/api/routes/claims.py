"""Claims: claim the next report (with long-poll), claim one, heartbeat, release.

A claim returns a lease and a claim token, shown once; heartbeat, release and resolve need the token.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from bugdesk import payload, service
from bugdesk.api.deps import DatabaseRoute, SettingsDep, Writer, WriterCredential, in_connection, run_db
from bugdesk.api.routes.reports import RefPath
from bugdesk.api.schemas import (
    AUTH,
    BODY,
    ClaimGranted,
    ClaimNextRequest,
    ClaimRelease,
    ClaimRequest,
    HeartbeatRequest,
    HeartbeatResult,
    ReportPublic,
    problems,
)
from bugdesk.config import Settings
from bugdesk.errors import QueueEmpty
from bugdesk.lifecycle import SEVERITIES

router = APIRouter(prefix="/api", tags=["claims"], route_class=DatabaseRoute)

# Long-poll: the first retry comes quickly, later ones back off to this interval.
POLL_FIRST_S = 0.05
POLL_MAX_S = 0.5


def _granted(claim: service.Claim) -> dict[str, Any]:
    return {
        "claim_token": claim.token,
        "expires_at": payload.iso(claim.expires_at),
        "report": payload.report_payload(claim.report),
    }


@in_connection
def _try_claim_next(
    actor: str, queue: service.QueueFilter, lease_seconds: int | None, settings: Settings
) -> dict[str, Any] | None:
    try:
        claim = service.claim_next(actor, queue, lease_seconds=lease_seconds, settings=settings)
    except QueueEmpty:
        return None
    return _granted(claim)


@router.post(
    "/claims/next",
    response_model=ClaimGranted,
    summary="Claim the next report",
    responses={204: {"description": "Nothing to claim (after waiting `wait` seconds)."}, **problems(*AUTH, *BODY)},
)
async def claim_next(
    credential: WriterCredential,
    settings: SettingsDep,
    request: Request,
    body: Annotated[ClaimNextRequest | None, Body()] = None,
) -> Any:
    """Lease the most urgent open report (severity, then SLA due) that fits the filter; 204 when there is none.

    With `wait` (≤ 30 s) the call polls the queue until a report turns up; no transaction is held in between.
    """
    body = body or ClaimNextRequest()
    actor = await run_db(in_connection(credential.actor), write=False)
    queue = service.QueueFilter(
        severities=list(body.severities or SEVERITIES),
        categories=body.categories,
        components=body.components,
        environment=body.environment,
        skip_failed=body.skip_failed,
    )
    deadline = time.monotonic() + body.wait
    delay = POLL_FIRST_S
    while True:
        granted = await run_db(_try_claim_next, actor, queue, body.lease_seconds, settings, write=True)
        if granted is not None:
            return granted
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Response(status_code=204)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, POLL_MAX_S)
        if await request.is_disconnected():
            # Nobody would receive the claim token: do not take a report for a caller that is gone.
            return Response(status_code=204)


@router.post(
    "/bug-reports/{ref}/claim",
    response_model=ClaimGranted,
    summary="Claim a report",
    responses=problems(*AUTH, 404, 409, *BODY),
)
def claim_report(
    ref: RefPath, actor: Writer, settings: SettingsDep, body: Annotated[ClaimRequest | None, Body()] = None
) -> dict[str, Any]:
    """Lease one report. 409 when someone else holds a live claim; claiming your own again renews it."""
    lease = body.lease_seconds if body else None
    return _granted(service.claim(ref, actor, lease_seconds=lease, settings=settings))


@router.post(
    "/bug-reports/{ref}/heartbeat",
    response_model=HeartbeatResult,
    summary="Extend a lease",
    responses=problems(*AUTH, 404, 409, *BODY),
)
def heartbeat(ref: RefPath, body: HeartbeatRequest, actor: Writer, settings: SettingsDep) -> dict[str, Any]:
    """Extend the lease of a live claim; 409 when the token does not match or the lease already ended."""
    expires = service.heartbeat(ref, body.claim_token, lease_seconds=body.lease_seconds, settings=settings)
    return {"expires_at": payload.iso(expires)}


@router.post(
    "/bug-reports/{ref}/release",
    response_model=ReportPublic,
    summary="Release a claim",
    responses=problems(*AUTH, 404, 409, *BODY),
)
def release_claim(ref: RefPath, body: ClaimRelease, actor: Writer) -> dict[str, Any]:
    """Give the report back to the queue (an `in_progress` report returns to `triaged`)."""
    return payload.report_json(service.release(ref, body.claim_token, reason=body.reason))
