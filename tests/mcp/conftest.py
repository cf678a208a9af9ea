"""Fixtures of the MCP tests: an in-process server on each backend, and the HTTP endpoint on a live server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import pytest
from mcplive import host_app, serve

from bugdesk.config import Settings
from bugdesk.db import database
from bugdesk.mcp import make_server
from bugdesk.service import tokens

# Who the live server knows, with their scopes.
TOKENS = {"fixer": "read,write", "other": "read,write", "reader": "read", "ingest": "ingest"}


@pytest.fixture
def mcp_settings(db_url: str) -> Settings:
    return replace(Settings(), database_url=db_url)


@pytest.fixture
def server(db, mcp_settings: Settings):
    """The MCP server in this process, on the ``db`` fixture's database (stdio's resolver)."""
    return make_server(mcp_settings)


@dataclass
class LiveMcp:
    url: str  # the MCP endpoint
    secrets: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def live_mcp(mcp_settings: Settings) -> Iterator[LiveMcp]:
    """The API app with /mcp mounted, on uvicorn over a socket, with the tokens of ``TOKENS``."""
    with serve(host_app(mcp_settings)) as base:
        live = LiveMcp(url=f"{base}/mcp/")
        with database.connection_context():  # the server bound the models to its pool
            for name, scopes in TOKENS.items():
                live.secrets[name] = tokens.create_token(name, scopes)[1]
        yield live
