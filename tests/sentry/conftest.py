"""Fixtures of the Sentry ingest tests: a live API server per backend (the API tests' helpers) and a DSN for it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))

from apilive import LiveServer, run_server

from bugdesk.config import Settings


@pytest.fixture
def live(db_url: str) -> Iterator[LiveServer]:
    """A running server on an empty database of each backend, with an ingest token and an admin token."""
    settings = replace(Settings(), database_url=db_url, release="")
    with run_server(settings) as url:
        server = LiveServer(url=url, settings=settings)
        server.add_token("ingest", "ingest")
        server.add_token("admin", "admin")
        server.add_token("agent", "read,write")
        yield server
        for client in server.clients:
            client.close()


@pytest.fixture
def dsn(live: LiveServer) -> str:
    """The server's DSN: ``http://KEY@127.0.0.1:PORT/1``."""
    parts = urlsplit(live.url)
    return f"http://{live.secrets['ingest']}@{parts.hostname}:{parts.port}/1"
