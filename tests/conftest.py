"""Fixtures that build real databases: a temporary SQLite file, and a throw-away PostgreSQL database.

The PostgreSQL tests run against the server on 127.0.0.1:5432 (or
``BUGDESK_TEST_POSTGRES_URL``). Without a server they skip with the reason,
unless ``BUGDESK_REQUIRE_POSTGRES=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bugdesk import db as dbmod
from bugdesk.config import Settings
from bugdesk.models import ALL_MODELS

ADMIN_URL = os.environ.get("BUGDESK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_POSTGRES = os.environ.get("BUGDESK_REQUIRE_POSTGRES") == "1"


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database for this test run, dropped at the end."""
    name = f"bugdesk_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        _admin_execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # no driver or no server
        message = f"PostgreSQL not available at {ADMIN_URL}: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (BUGDESK_REQUIRE_POSTGRES=1 forbids skipping)")
        pytest.skip(message)
    base = ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _postgres_schema(postgres_url: str) -> str:
    db = dbmod.open_database(postgres_url)
    db.connect()
    dbmod.upgrade(db)
    db.close()
    return postgres_url


def _truncate_postgres(db) -> None:
    tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    db.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    db.execute_sql("ALTER SEQUENCE bug_reports_number_seq RESTART WITH 1")


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path: Path) -> str:
    """A migrated, empty database URL of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bugdesk.db'}"
        db = dbmod.open_database(url)
        db.connect()
        dbmod.upgrade(db)
        db.close()
        return url
    url = request.getfixturevalue("_postgres_schema")
    db = dbmod.open_database(url)
    db.connect()
    _truncate_postgres(db)
    db.close()
    return url


@pytest.fixture
def db(db_url: str, settings: Settings):
    """The models bound to a migrated, empty database (SQLite file or PostgreSQL)."""
    database = dbmod.use(dbmod.open_database(db_url, settings))
    database.connect(reuse_if_open=True)
    yield database
    if not database.is_closed():
        database.close()


@pytest.fixture
def sqlite_db(tmp_path: Path, settings: Settings):
    url = f"sqlite:///{tmp_path / 'bugdesk.db'}"
    with dbmod.connected(url, settings) as database:
        yield database


def unique_word() -> str:
    """A random word with no digits or hex-only runs, so fingerprints keep it (titles stay distinct)."""
    return "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(14))


def report_data(**overrides) -> dict:
    data = {
        "title": "KeyError in charge()",
        "description": "checkout failed",
        "severity": "high",
        "component": "payments",
        "stacktrace": None,
    }
    data.update(overrides)
    return data


@pytest.fixture
def make_report(db, settings):
    """Create a distinct canonical report through the service layer."""
    from bugdesk.service import create_report

    def make(**overrides):
        overrides.setdefault("title", f"problem with the {unique_word()} widget")
        data = report_data(**overrides)
        return create_report(data, "tester", settings=settings).report

    return make
