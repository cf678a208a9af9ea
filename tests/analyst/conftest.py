"""One seeded SQLite database per test module, served by an in-process Datasette built like `bugdesk datasette`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from analystkit import Client, World, seed_world

from bugdesk.analyst import serve


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """The history of analystkit.seed_world, written through the service layer (seeded once per module)."""
    return seed_world(tmp_path_factory.mktemp("analyst") / "bugdesk.db")


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[Client]:
    """Datasette on the live file: read-only (mode=ro), guarded, with datasette-metadata.json."""
    client = Client(serve.build_datasette(world.path))
    yield client
    client.close()
