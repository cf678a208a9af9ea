"""The MCP Streamable HTTP transport as an ASGI app, behind the API's bearer tokens and scopes.

Mount it in the API app with one line, and run its session manager from the API's lifespan
(Starlette never runs a mounted app's own lifespan)::

    app.mount("/mcp", mcp_http_app(settings))        # clients connect to http://HOST:PORT/mcp/

    @contextlib.asynccontextmanager
    async def lifespan(app):
        ...                                          # open the database as before
        async with mcp_lifespan(app):                # runs every mounted McpHttpApp's session manager
            yield

Served on its own (``uvicorn.run(mcp_http_app(settings))``) it runs its lifespan itself and
also opens the database; mounted, the host app owns the database.

Every request needs ``Authorization: Bearer <token>`` with the ``read`` scope (401/403 as
``application/problem+json`` otherwise, like ``/api``); tools that change anything check
``write`` again per call, so a read-only token gets a tool error naming the missing scope.
The actor on events is the token's name.

The transport is stateless (no ``Mcp-Session-Id``): every POST stands alone, so any worker
process of ``bugdesk serve --workers N``, on any host sharing the PostgreSQL database, can
answer any request. bugdesk's tools never call back into the client, so nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import anyio.to_thread
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import Context
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from peewee import InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from bugdesk import db as dbmod
from bugdesk.config import Settings
from bugdesk.db import database
from bugdesk.errors import AuthError, BugdeskError
from bugdesk.mcp.server import Caller, DatabaseBusy, make_server, problem
from bugdesk.service import tokens

NOT_STARTED = (
    "the MCP transport is not running: the host app's lifespan must enter "
    "`bugdesk.mcp.http.mcp_lifespan(app)` (Starlette does not run a mounted app's lifespan)"
)


def token_caller(ctx: Context) -> Caller:
    """The HTTP resolver: the bearer token ``McpHttpApp`` authenticated for this request."""
    request = ctx.request_context.request
    user = request.scope.get("user") if request is not None else None
    if not isinstance(user, AuthenticatedUser):
        raise AuthError("missing token: send `Authorization: Bearer <token>`")
    return Caller(actor=user.access_token.client_id, secret=user.access_token.token)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            return (secret.strip() or None) if scheme.lower() == "bearer" else None
    return None


def _authenticate(secret: str | None) -> AccessToken:
    """The token for ``secret`` holding `read`, as the SDK's AccessToken (its name is the actor)."""
    with database.connection_context():
        try:
            token = tokens.authenticate(secret, "read")
            tokens.touch(token)
        except (OperationalError, InterfaceError, MaxConnectionsExceeded) as exc:
            raise DatabaseBusy("the database could not serve the request in time; retry shortly") from exc
    assert secret is not None  # authenticate refuses a missing secret
    return AccessToken(token=secret, client_id=token.name, scopes=token.scopes.split(","))


class McpHttpApp:
    """ASGI app: bearer-token check, then the SDK's Streamable HTTP transport for a bugdesk MCP server."""

    def __init__(self, settings: Settings, *, transport_security: TransportSecuritySettings | None = None) -> None:
        self.settings = settings
        self.server = make_server(settings, token_caller)
        # The SDK builds its session manager inside streamable_http_app(); the Starlette app it returns is
        # not used, because its route and lifespan do not survive mounting (see the module docstring).
        self.server.streamable_http_app(
            stateless_http=True,
            json_response=True,
            max_request_body_size=settings.api_body_limit_bytes,
            # DNS-rebinding protection guards servers that trust any local caller; every request here
            # needs a bearer token a rebinding page cannot know, and the API may bind a public host name.
            transport_security=transport_security or TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.session_manager: StreamableHTTPSessionManager = self.server.session_manager
        self.running = False

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the transport's session manager (its task group) for the duration of the block.

        Entering it again while it runs is a no-op, so a host that both mounts the app and wraps
        its lifespan twice cannot trip the SDK's run-once rule. After it ends the app is spent.
        """
        if self.running:
            yield
            return
        async with self.session_manager.run():
            self.running = True
            try:
                yield
            finally:
                self.running = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets: not part of the transport
            return
        state = scope.setdefault("state", {})
        if not self.running:
            await _problem(send, state, 503, "not started", NOT_STARTED, "not-started")
            return
        try:
            access = await anyio.to_thread.run_sync(_authenticate, _bearer(scope))
        except BugdeskError as exc:
            body = problem(exc)
            await _problem(send, state, exc.http_status, body["title"], body["detail"], body["type"].rsplit(":", 1)[1])
            return
        # Where the SDK's own auth middleware would put it: the transport binds requests to this principal,
        # and token_caller reads it back in the tool call.
        scope["user"] = AuthenticatedUser(access)
        scope["auth"] = AuthCredentials(access.scopes)
        state["actor"] = access.client_id  # the API's access log records it
        await self.session_manager.handle_request(scope, receive, send)

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI lifespan when served on its own: open the database and run the session manager."""
        await receive()  # lifespan.startup
        started = False
        try:
            with self._own_database():
                async with self.lifespan():
                    await send({"type": "lifespan.startup.complete"})
                    started = True
                    await receive()  # lifespan.shutdown
        except Exception as exc:
            await send(
                {"type": "lifespan.shutdown.failed" if started else "lifespan.startup.failed", "message": str(exc)}
            )
            return
        await send({"type": "lifespan.shutdown.complete"})

    @contextlib.contextmanager
    def _own_database(self) -> Iterator[None]:
        # Imported here: bugdesk.api.app imports this module to mount it, so a top-level import would be circular.
        from bugdesk.api.app import pool_url

        url = pool_url(self.settings.database_url, max_connections=dbmod.pool_size(self.settings))
        db = dbmod.use(dbmod.open_database(url, self.settings))
        with db.connection_context():
            dbmod.ensure_schema(db)
        try:
            yield
        finally:
            db.close_all()


async def _problem(
    send: Send, state: MutableMapping[str, Any], status: int, title: str, detail: str, kind: str
) -> None:
    """An ``application/problem+json`` answer with the API's members (and its request id when mounted there)."""
    members = {"type": f"urn:bugdesk:problem:{kind}", "title": title, "status": status, "detail": detail}
    body = json.dumps({**members, "request_id": state.get("request_id")}).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="bugdesk"'))
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def mcp_http_app(settings: Settings, *, transport_security: TransportSecuritySettings | None = None) -> McpHttpApp:
    """The MCP endpoint for ``settings``: mount it at ``/mcp`` and enter ``mcp_lifespan(app)`` in the host lifespan."""
    return McpHttpApp(settings, transport_security=transport_security)


def _mounted(app: Any) -> Iterator[McpHttpApp]:
    """Every McpHttpApp mounted in ``app`` (a Starlette or FastAPI app), at any depth."""
    for route in getattr(app, "routes", ()):
        inner: ASGIApp | None = getattr(route, "app", None)
        if isinstance(inner, McpHttpApp):
            yield inner
        elif inner is not None and inner is not app:
            yield from _mounted(inner)


@contextlib.asynccontextmanager
async def mcp_lifespan(app: Any) -> AsyncIterator[None]:
    """Run the session managers of the MCP apps mounted in ``app``; enter it from the host app's lifespan."""
    async with contextlib.AsyncExitStack() as stack:
        for mcp_app in _mounted(app):
            await stack.enter_async_context(mcp_app.lifespan())
        yield


__all__ = ["McpHttpApp", "mcp_http_app", "mcp_lifespan", "token_caller"]
