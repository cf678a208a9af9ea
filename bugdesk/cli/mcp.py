"""`bugdesk mcp`: the MCP server over stdio, for an agent that starts it as a subprocess."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from bugdesk import db as dbmod
from bugdesk.cli._app import app, fail, state
from bugdesk.errors import BugdeskError


@app.command("mcp")
def mcp_stdio(
    log_level: Annotated[str, typer.Option(help="Level of the log written to stderr.")] = "warning",
) -> None:
    """Serve bugdesk's MCP tools, resources and prompt over stdio (stdin/stdout carry the protocol).

    An MCP client starts this command itself; events are recorded under the client's name (its
    clientInfo), or "mcp" when it gives none. Pick the database with --db or BUGDESK_DATABASE_URL.

    Example: bugdesk --db bugdesk.db mcp
    """
    import anyio

    from bugdesk.api.app import pool_url
    from bugdesk.api.deps import sqlite_write_queue
    from bugdesk.mcp import make_server

    settings = state.settings
    try:
        dbmod.open_database(settings.database_url, settings)  # a bad URL is refused as the user wrote it
        # Pooled, so each tool call checks a connection out instead of opening one (PostgreSQL connects slowly).
        url = pool_url(settings.database_url, max_connections=dbmod.pool_size(settings))
        db = dbmod.use(dbmod.open_database(url, settings))
        with db.connection_context():
            dbmod.ensure_schema(db)
    except BugdeskError as exc:
        fail(str(exc))
    # stdout carries the protocol: the log goes to stderr, which MCP clients show or keep.
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    server = make_server(settings)

    async def serve() -> None:
        with sqlite_write_queue():  # SQLite writes from concurrent tool calls take turns, as in the API
            await server.run_stdio_async()

    try:
        anyio.run(serve, backend_options={"use_uvloop": True})
    except KeyboardInterrupt:
        pass
    finally:
        db.close_all()
