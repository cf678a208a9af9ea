"""A live API server per test: uvicorn in a thread on a free 127.0.0.1 port, over each backend's database.

Tests talk to it with real httpx requests over the socket. The server binds the models to
its pooled database (``bugdesk.db.use``), so test code in this thread can also call the
service layer directly to set up data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from apilive import TOKENS, LiveServer, run_server, submission

from bugdesk.config import Settings


@pytest.fixture
def api_settings(db_url: str) -> Settings:
    return replace(Settings(), database_url=db_url, release="")


@pytest.fixture
def live(api_settings: Settings) -> Iterator[LiveServer]:
    """A running server on an empty database of each backend, with the tokens of ``TOKENS``."""
    with run_server(api_settings) as url:
        server = LiveServer(url=url, settings=api_settings)
        for name, scopes in TOKENS.items():
            server.add_token(name, scopes)
        yield server
        for client in server.clients:
            client.close()


@pytest.fixture
def new_report():
    """Builds report bodies: ``new_report(severity="low")``."""
    return submission
