"""The bugdesk MCP server: ``make_server(settings, actor_resolver)`` builds it for any transport.

Every tool calls the same service functions as the HTTP API, so leases, claim tokens,
versions, scopes and events follow the same rules. What differs per transport is only
*who* is calling, which ``actor_resolver`` answers from the request context:

- stdio (``bugdesk mcp``): the client's name from its ``clientInfo`` (``client_name_caller``);
- Streamable HTTP (``/mcp``): the bearer token's name (``bugdesk.mcp.http.token_caller``).

Peewee is synchronous, so each call runs in a worker thread with a connection checked
out for that call only (``Desk.run``); the event loop that serves the protocol never waits
on the database. On SQLite, writes queue in the process's write queue like the API's.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, TextContent
from peewee import InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded

from bugdesk.config import Settings
from bugdesk.db import database
from bugdesk.errors import BugdeskError
from bugdesk.service import tokens

T = TypeVar("T")

INSTRUCTIONS = """\
bugdesk is a bug-report desk. To fix bugs: claim one (claim_next for the most urgent, or claim_report for a
given number), keep the returned claim_token, read the report with get_report (stack trace, repo path hints,
dedup group, telemetry, earlier attempts), record findings with add_note, heartbeat before the lease ends,
then resolve_report with resolution notes, commit SHAs and the claim_token (or release_claim if you give up).
Wrap an attempt in start_agent_run / finish_agent_run. Errors are JSON with a `detail` that says what to do.
The fix_bug prompt walks through this for one report.
"""


@dataclass(frozen=True)
class Caller:
    """Who is calling: the actor recorded on events, and how to check their scopes.

    ``secret`` is the bearer token over HTTP, checked again (in the worker thread, so a
    revoked token stops working at once) for every call; None means a trusted local
    caller (stdio: whoever can start ``bugdesk mcp`` can open the database anyway).
    """

    actor: str
    secret: str | None = None

    def authorize(self, scope: str) -> None:
        """Raise AuthError/ScopeError unless the caller holds ``scope``; needs a database connection."""
        if self.secret is not None:
            tokens.authenticate(self.secret, scope)


ActorResolver = Callable[[Context], Caller]

# Longer than this, a client name is cut: `actor` columns hold 255 characters.
_ACTOR_MAX = 255


def client_name_caller(ctx: Context) -> Caller:
    """The stdio resolver: the MCP client's ``clientInfo.name`` (from ``initialize``, or the
    request envelope on 2026-era connections), falling back to ``"mcp"``."""
    params = ctx.request_context.session.client_params
    info = params.client_info if params is not None else None
    name = (info.name if info is not None else "").strip()
    return Caller(actor=name[:_ACTOR_MAX] or "mcp")


# ----------------------------------------------------------------------------------- results and errors


def json_result(data: dict[str, Any], *, is_error: bool = False) -> CallToolResult:
    """A tool answer: the JSON as text for the model, and the same object as structured content."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data, is_error=is_error)


def _kind(error: type) -> str:
    """``StaleVersion`` -> ``stale-version``, the tail of the problem ``type`` (as the HTTP API names it)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", error.__name__).lower()


# Detail keys named like a problem member are renamed rather than dropped (as the HTTP API does).
_RENAMED = {"type": "error_type", "title": "error_title", "status": "current_status", "detail": "error_detail"}


def problem(exc: BugdeskError) -> dict[str, Any]:
    """The same members as the HTTP API's problem+json body, so an agent reads one error shape everywhere."""
    body: dict[str, Any] = {
        "type": f"urn:bugdesk:problem:{_kind(type(exc))}",
        "title": exc.title,
        "status": exc.http_status,
        "detail": exc.message,
    }
    for key, value in exc.details.items():
        body[_RENAMED.get(key, key)] = value
    return body


# Driver messages of errors that pass: a busy database, a dropped or refused connection.
_TRANSIENT = re.compile(r"locked|busy|timeout|timed out|connection|connect|server closed|terminat", re.IGNORECASE)


class DatabaseBusy(BugdeskError):
    """A transient database failure, answered like the API's 503 so an agent knows to retry."""

    title = "database busy"
    http_status = 503


class Desk:
    """What every tool and resource shares: settings, the caller resolver, and the thread/connection plumbing."""

    def __init__(self, settings: Settings, resolver: ActorResolver) -> None:
        # The API's threadpool runner: on SQLite a write waits its turn in the process's write queue (when the
        # host entered one, see bugdesk.api.deps), so MCP and API writers queue together instead of racing in
        # SQLite's busy handler. Imported here, not at the top: bugdesk.api.app imports bugdesk.mcp.http.
        from bugdesk.api.deps import run_db

        self.settings = settings
        self.resolver = resolver
        self._run_db = run_db

    async def run(self, ctx: Context | None, scope: str, work: Callable[[Caller], T]) -> T:
        """``work(caller)`` in a worker thread with its own connection, after checking ``scope``.

        ``ctx`` None is for handlers the SDK gives no context (static resources): reads only, relying
        on the transport's own check. Raises BugdeskError (AuthError, ScopeError, DatabaseBusy, ...).
        """
        if ctx is None:
            if scope != "read":
                raise ValueError("a call without a request context may only read")
            caller = Caller(actor="mcp")
        else:
            caller = self.resolver(ctx)

        def call() -> T:
            with database.connection_context():
                caller.authorize(scope)
                return work(caller)

        try:
            return await self._run_db(call, write=scope != "read")
        except (OperationalError, InterfaceError, MaxConnectionsExceeded) as exc:
            if not isinstance(exc, MaxConnectionsExceeded) and not _TRANSIENT.search(str(exc)):
                raise
            raise DatabaseBusy("the database could not serve the request in time; retry shortly") from exc

    async def tool(self, ctx: Context, scope: str, work: Callable[[Caller], dict[str, Any]]) -> CallToolResult:
        """Run a tool body; a BugdeskError becomes a tool error (``is_error``) carrying the problem JSON."""
        try:
            return json_result(await self.run(ctx, scope, work))
        except BugdeskError as exc:
            return json_result(problem(exc), is_error=True)


def _version() -> str:
    try:
        return metadata.version("bugdesk")
    except metadata.PackageNotFoundError:  # running from a bare checkout
        return "0"


def make_server(settings: Settings, actor_resolver: ActorResolver = client_name_caller) -> MCPServer:
    """The MCP server with bugdesk's tools, resources and the ``fix_bug`` prompt.

    The database must already be bound (``bugdesk.db.use``); each call checks a connection out of it.
    """
    from bugdesk.mcp import resources, tools  # they import Desk from here

    # The SDK's constructor calls logging.basicConfig; logging belongs to the host (the API server, the CLI).
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server = MCPServer(
        "bugdesk",
        title="bugdesk",
        description="Find, claim, investigate, annotate and resolve bug reports.",
        instructions=INSTRUCTIONS,
        version=_version(),
    )
    root.handlers[:] = handlers
    root.setLevel(level)
    desk = Desk(settings, actor_resolver)
    tools.register(server, desk)
    resources.register(server, desk)
    return server
