"""Helpers of the MCP tests: the stdio server as a subprocess, the HTTP endpoint on a live uvicorn, tool calls."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from mcp import StdioServerParameters
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, Implementation

from bugdesk.api.app import create_app
from bugdesk.config import Settings
from bugdesk.mcp.http import _mounted, mcp_http_app, mcp_lifespan

# The tools issue 10 names; an agent finds them by these words.
REQUIRED_TOOLS = {
    "list_reports", "get_report", "claim_next", "claim_report", "heartbeat", "release_claim", "add_note",
    "update_report", "resolve_report", "search_reports", "status_summary", "start_agent_run", "finish_agent_run",
}  # fmt: skip


def stdio_params(db_url: str, cwd: Path) -> StdioServerParameters:
    """``python -m bugdesk --db URL mcp`` in ``cwd`` (so no stray bugdesk.toml is read)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUGDESK_")}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "bugdesk", "--db", db_url, "mcp"], env=env, cwd=str(cwd)
    )


def stdio_client(db_url: str, cwd: Path, name: str, **kwargs: Any) -> Client:
    return Client(stdio_params(db_url, cwd), client_info=Implementation(name=name, version="1"), **kwargs)


@contextlib.asynccontextmanager
async def http_client(url: str, secret: str | None, **kwargs: Any) -> AsyncIterator[Client]:
    """An SDK client on the Streamable HTTP endpoint, sending ``secret`` as the bearer token."""
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), **kwargs) as client,
    ):
        yield client


def data(result: CallToolResult) -> dict[str, Any]:
    """The JSON answer of a tool call; the text and the structured content must agree."""
    parsed = json.loads(result.content[0].text)
    assert result.structured_content == parsed
    return parsed


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    return data(result)


async def fails(client: Client, tool: str, **arguments: Any) -> CallToolResult:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.content[0].text
    return result


def host_app(settings: Settings):
    """The API app with the MCP endpoint at /mcp, as the lead wires it (unless create_app already does)."""
    app = create_app(settings)
    if not any(_mounted(app)):
        app.mount("/mcp", mcp_http_app(settings))
        api_lifespan = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(app_):
            async with api_lifespan(app_), mcp_lifespan(app_):
                yield

        app.router.lifespan_context = lifespan
    return app


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """``app`` on uvicorn in a thread on a free 127.0.0.1 port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive():
        if time.monotonic() > deadline:
            raise TimeoutError("the server did not start within 15 s")
        time.sleep(0.005)
    if not server.started:
        raise RuntimeError("the server failed to start (see the log above)")
    host, port = sock.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
