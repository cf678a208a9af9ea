"""Sentry-compatible ingest: ``POST /api/{project_id}/envelope/`` and ``/store/``, as the official SDKs send them.

Authentication is the DSN's public key (``X-Sentry-Auth: Sentry sentry_key=KEY, ...``, the
``sentry_key`` query parameter, or the ``dsn`` in the envelope header), which is an API token
with the ``ingest`` scope. An error or message event becomes a report through
`bugdesk.service.create_report` (one transaction: stored and grouped when the 200 returns); its
``event_id`` is the idempotency key, so an SDK retry never stores twice. Other items are
accepted and dropped. Answers: 200 ``{"id": event_id}``; 400 malformed; 401/403 key; 413 too
large; 429 with ``Retry-After`` (and ``X-Sentry-Rate-Limits``) when this worker is over its bound: admission
control (bugdesk/api/admission.py) answers it before the body is read when the worker has its limit of writes in
flight; the backlog check here is the backstop when admission control is turned off (``api_max_in_flight = 0``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from bugdesk import service
from bugdesk.api.deps import run_db, write_queue_waiting
from bugdesk.api.schemas import problems
from bugdesk.config import Settings
from bugdesk.db import database
from bugdesk.errors import ValidationError
from bugdesk.sentry import envelope as env
from bugdesk.sentry.event import event_id_of, report_from_event
from bugdesk.service import tokens

router = APIRouter(tags=["sentry"])


@dataclass(frozen=True)
class IngestConfig:
    """Limits of the ingest endpoints (tests and operators may replace `CONFIG`)."""

    limits: env.Limits = env.DEFAULT_LIMITS
    # Requests of this worker waiting to write (SQLite queue) or in flight here, beyond which it answers 429.
    # 16 busy SDK clients keep it under 20; 256 waiting writes at ~1 ms each is already a quarter second behind.
    max_backlog: int = 256
    retry_after_seconds: int = 1
    # Bodies over this are parsed in a worker thread, so one large event does not stall the event loop.
    inline_parse_bytes: int = 64 * 1024


CONFIG = IngestConfig()

# Per process; only the event loop thread touches it.
_in_flight = 0

ProjectPath = Path(max_length=64, description="The project id of the DSN (`http://KEY@HOST:PORT/PROJECT`).")


@dataclass(frozen=True)
class Parsed:
    """What a request body holds: the event to store (if any) and the key the envelope header names."""

    event_id: str | None = None
    report: dict[str, Any] | None = None
    dsn_key: str | None = None


def sentry_key(request: Request) -> str | None:
    """The DSN public key from ``X-Sentry-Auth`` (or ``Authorization: Sentry ...``), else the query string."""
    for header in ("x-sentry-auth", "authorization"):
        value = request.headers.get(header, "")
        if value[:7].lower() == "sentry ":
            for part in value[7:].split(","):
                name, _, key = part.strip().partition("=")
                if name.strip() == "sentry_key" and key.strip():
                    return key.strip()
    return request.query_params.get("sentry_key") or None


def _dsn_key(headers: dict[str, Any]) -> str | None:
    """The public key of the envelope header's ``dsn`` (what tunnels forward), if any."""
    dsn = headers.get("dsn")
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


def parse_body(body: bytes, content_encoding: str | None, kind: str, project: str, limits: env.Limits) -> Parsed:
    """Decode and parse a body and map its event (pure CPU, no database); EnvelopeError/TooLarge when bad."""
    data = env.decode_body(body, content_encoding, limit=limits.envelope)
    if kind == "store":
        event: Any = env.parse_store_body(data, limits)
        headers: dict[str, Any] = {}
    else:
        parsed = env.parse_envelope(data, limits)
        headers = parsed.headers
        events = [item for item in parsed.items if item.type in env.EVENT_TYPES]
        if len(events) > 1:
            raise env.EnvelopeError(f"an envelope carries at most one event; this one has {len(events)}")
        if not events:
            raw_id = headers.get("event_id")
            event_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
            return Parsed(event_id=event_id, dsn_key=_dsn_key(headers))
        event = events[0].json()
        if not isinstance(event, dict):
            raise env.EnvelopeError(f"the event item must be a JSON object, got {type(event).__name__}")
    event_id = event_id_of(event, headers)
    report = report_from_event(event, event_id=event_id, project=project)
    return Parsed(event_id=event_id, report=report, dsn_key=_dsn_key(headers))


def _store(key: str, parsed: Parsed, settings: Settings, state: Any) -> None:
    """Check the key and store the report: one threadpool call, one connection, one transaction for the report."""
    with database.connection_context():
        token = tokens.authenticate(key, "ingest")
        tokens.touch(token)
        state.actor = token.name
        if parsed.report is None:
            return
        idempotency_key = f"sentry:{parsed.event_id}" if parsed.event_id else None
        try:
            service.create_report(parsed.report, token.name, settings=settings, idempotency_key=idempotency_key)
        except ValidationError as exc:
            # The SDK drops a 400 event instead of retrying it, which is right for data we cannot store.
            raise HTTPException(400, f"the event cannot be stored as a report: {exc.message}") from None


@contextlib.contextmanager
def _counted() -> Iterator[None]:
    global _in_flight
    _in_flight += 1
    try:
        yield
    finally:
        _in_flight -= 1


def _behind(config: IngestConfig) -> HTTPException | None:
    """A 429 when this worker is behind: more writes waiting (or ingests in flight) than ``max_backlog``."""
    backlog = max(write_queue_waiting(), _in_flight)
    if backlog < config.max_backlog:
        return None
    seconds = str(config.retry_after_seconds)
    # X-Sentry-Rate-Limits is what current SDKs read first: "<seconds>::organization" pauses every category.
    headers = {"Retry-After": seconds, "X-Sentry-Rate-Limits": f"{seconds}::organization"}
    return HTTPException(429, f"ingest is {backlog} writes behind; retry after {seconds} s", headers=headers)


async def _ingest(request: Request, project_id: str, kind: str) -> JSONResponse:
    config = CONFIG
    key = sentry_key(request)
    busy = _behind(config)
    if busy is not None:
        raise busy
    body = await request.body()
    encoding = request.headers.get("content-encoding")
    try:
        if len(body) <= config.inline_parse_bytes:
            parsed = parse_body(body, encoding, kind, project_id, config.limits)
        else:
            parsed = await anyio.to_thread.run_sync(parse_body, body, encoding, kind, project_id, config.limits)
    except env.EnvelopeError as exc:
        raise HTTPException(exc.http_status, exc.message) from None
    key = key or parsed.dsn_key
    if key is None:
        tokens.authenticate(None, "ingest")  # the 401 with its how-to
        raise AssertionError("unreachable")
    settings: Settings = request.app.state.settings
    with _counted():
        await run_db(_store, key, parsed, settings, request.state, write=parsed.report is not None, submission=True)
    return JSONResponse({"id": parsed.event_id} if parsed.event_id else {})


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": 'Accepted: `{"id": "<event id>"}`; an event is stored and grouped by then.'},
    **problems(401, 403, 422, 503),
    400: {"description": "A malformed body: bad compression, envelope framing, JSON or event.", "content": _PROBLEM},
    413: {"description": "The body, the decompressed envelope or the event is over its limit.", "content": _PROBLEM},
    429: {"description": "The server is behind: retry after `Retry-After` seconds.", "content": _PROBLEM},
}


@router.post("/api/{project_id}/envelope/", summary="Sentry envelope ingest", responses=_RESPONSES)
async def envelope_endpoint(request: Request, project_id: str = ProjectPath) -> JSONResponse:
    """What `sentry-sdk` sends: an envelope (optionally gzip/deflate/br). Errors and messages become reports."""
    return await _ingest(request, project_id, "envelope")


@router.post("/api/{project_id}/store/", summary="Sentry store ingest (legacy)", responses=_RESPONSES)
async def store_endpoint(request: Request, project_id: str = ProjectPath) -> JSONResponse:
    """What older SDKs send: one event as JSON (optionally compressed). It becomes a report."""
    return await _ingest(request, project_id, "store")
