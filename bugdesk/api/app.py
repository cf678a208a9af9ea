"""The FastAPI application: routers, problem+json errors, middleware, and the database pool's lifetime."""

from __future__ import annotations

import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from peewee import InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded
from starlette.exceptions import HTTPException as StarletteHTTPException

from bugdesk import db as dbmod
from bugdesk.api.admission import AdmissionMiddleware, AdmissionState
from bugdesk.api.deps import sqlite_write_queue, write_queue_delay
from bugdesk.api.middleware import RequestContextMiddleware, RequestMetrics
from bugdesk.api.routes import admin, claims, events, meta, reports, runs, sentry
from bugdesk.api.schemas import Problem
from bugdesk.config import Settings, load_settings
from bugdesk.errors import BugdeskError
from bugdesk.mcp.http import mcp_http_app, mcp_lifespan

log = logging.getLogger("bugdesk.api")

PROBLEM = "application/problem+json"
API_VERSION = "1"

DESCRIPTION = """\
The agent API of bugdesk: list, claim, update, resolve and annotate bug reports.

Authenticate with `Authorization: Bearer <token>` (create one with `bugdesk token create NAME --scopes read,write`).
Scopes: `read` for GETs, `write` for changes (implies read), `ingest` only creates reports, `admin` for merge, split
and tokens (implies everything). Errors are `application/problem+json` (RFC 9457). Updates are conditional: send
`If-Match: "<version>"` (the report's ETag) or a `version` field.
"""


def pool_url(url: str, *, max_connections: int = 64) -> str:
    """The pooled variant of a database URL (``sqlite+pool://``, ``postgresql+pool://``).

    Each request checks a connection out of the pool and returns it, instead of opening one.
    SQLite connections move between threadpool threads, which is safe because the pool hands
    each one to a single thread at a time.
    """
    scheme, rest = dbmod.normalize_url(url).split("://", 1)
    if "+pool" not in scheme:
        scheme = f"{scheme}+pool"
    location, _, query_text = rest.partition("?")
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    query.setdefault("max_connections", str(max_connections))
    # Wait for a free connection instead of failing at once when the pool is exhausted.
    query.setdefault("timeout", "30")
    if scheme.startswith("sqlite"):
        query.setdefault("check_same_thread", "false")
    return f"{scheme}://{location}?{urlencode(query)}"


def _kind(error: type) -> str:
    """``StaleVersion`` -> ``stale-version``: the tail of the problem ``type``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", error.__name__).lower()


# Error details named like a standard problem member are renamed rather than dropped.
_RENAMED = {"type": "error_type", "title": "error_title", "status": "current_status", "detail": "error_detail"}


def problem(
    status: int, title: str, detail: str, kind: str, request: Request, extra: dict[str, Any] | None = None
) -> JSONResponse:
    """An RFC 9457 ``application/problem+json`` response; ``extra`` adds members (field, allowed, ...)."""
    body: dict[str, Any] = {"type": f"urn:bugdesk:problem:{kind}", "title": title, "status": status, "detail": detail}
    for key, value in jsonable_encoder(extra or {}).items():
        body[_RENAMED.get(key, key)] = value
    body["request_id"] = getattr(request.state, "request_id", None)
    headers = {"WWW-Authenticate": 'Bearer realm="bugdesk"'} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def _bugdesk_error(request: Request, exc: BugdeskError) -> JSONResponse:
    return problem(exc.http_status, exc.title, exc.message, _kind(type(exc)), request, exc.details)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"field": ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0]), "message": err["msg"]}
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem(
        422, "invalid input", detail, "validation-error", request, {"field": first["field"], "errors": errors}
    )


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    title = HTTPStatus(exc.status_code).phrase.lower()
    detail = exc.detail if isinstance(exc.detail, str) else title
    response = problem(exc.status_code, title, detail, title.replace(" ", "-"), request)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


# Driver messages of errors that pass: a busy database, a dropped or refused connection.
# Not "terminat" alone: SQLite's "unterminated string" is a bad query, not a busy database.
_TRANSIENT = re.compile(
    r"locked|busy|timeout|timed out|connection|connect|server closed|terminating connection", re.IGNORECASE
)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, MaxConnectionsExceeded) and not _TRANSIENT.search(str(exc)):
        return await _unexpected(request, exc)
    log.warning("database unavailable: %s", exc)
    return problem(
        503,
        "database busy",
        "the database could not serve the request in time; retry shortly",
        "database-busy",
        request,
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(500, "internal error", "the server failed; the error is logged", "internal-error", request)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema plus the Problem model the problem+json responses refer to."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        from bugdesk.api.openapi import add_links  # it imports this module to build the committed document

        app.openapi_schema = add_links(schema)
    return app.openapi_schema


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings``; the database pool opens at startup and closes at shutdown."""
    settings = settings or load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = pool_url(settings.database_url, max_connections=dbmod.pool_size(settings))
        db = dbmod.use(dbmod.open_database(url, settings))
        with db.connection_context():
            dbmod.ensure_schema(db)
        try:
            with sqlite_write_queue(), dbmod.shared_write_lock(db):
                async with mcp_lifespan(app):  # the mounted MCP endpoint's session manager
                    yield
        finally:
            db.close_all()

    app = FastAPI(
        title="bugdesk agent API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.metrics = RequestMetrics()
    for module in (reports, claims, events, runs, admin, meta, sentry):
        app.include_router(module.router)
    app.mount("/mcp", mcp_http_app(settings))  # MCP over Streamable HTTP, same tokens and scopes
    app.add_exception_handler(BugdeskError, _bugdesk_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in (OperationalError, InterfaceError, MaxConnectionsExceeded):
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(Exception, _unexpected)
    # 0 for a narrower bound means "no bound of its own": the kind shares the wider one.
    max_writes = settings.api_max_writes_in_flight or settings.api_max_in_flight
    app.state.admission = AdmissionState(
        max_in_flight=settings.api_max_in_flight,
        max_writes=max_writes,
        max_ingest=settings.api_max_ingest_in_flight or max_writes,
        wait_seconds=settings.api_queue_wait_ms / 1000,
        queue_target=settings.api_ingest_queue_target_ms / 1000,
        queue_delay=write_queue_delay,
    )
    # Starlette runs the last added middleware first: the request context (request id, access log, metrics)
    # wraps admission, so a shed request is logged, counted and carries its X-Request-ID too.
    app.add_middleware(AdmissionMiddleware, state=app.state.admission)
    app.add_middleware(RequestContextMiddleware, body_limit=settings.api_body_limit_bytes, metrics=app.state.metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and worker processes: settings from bugdesk.toml and BUGDESK_*."""
    app = create_app(load_settings())
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Take what start-up allocated (modules, the app, its routes and schemas) out of the garbage collector's walks.

    A full collection walks every tracked object and holds the GIL throughout: with the ~130,000 a worker has after
    start-up, each one stopped every request for ~200 ms of CPU, several times a minute under an ingest storm, and
    that was the tail of the read latency (`benchmarks/soak.py`). Frozen objects are never collected, which costs
    nothing here since they live as long as the process; collections then walk only what requests left behind
    (~30 ms). Only for served worker processes: tests embed many apps in one process.
    """
    gc.collect()
    gc.freeze()
