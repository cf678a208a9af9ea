"""Shared by the hostile-input corpus, the fuzz tests and the fuzz campaign: a live server per backend,
a raw-socket client, the endpoint table with valid bodies, and a database snapshot.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))

from apilive import TOKENS, LiveServer, run_server, submission

from bugdesk import service
from bugdesk.config import Settings
from bugdesk.db import database
from bugdesk.models import ALL_MODELS
from bugdesk.service import runs

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, whichever client got it."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        return cls(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def raw_request(url: str, head: bytes, body: bytes = b"", timeout: float = 20) -> Answer:
    """Send bytes as they are (httpx refuses CR/LF in headers and normalises ``..`` in paths); read to close."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    data = b"".join(chunks)
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(lines[0].split(" ")[1]), headers, rest)


def database_snapshot() -> dict[str, Any]:
    """Row counts of every table and the newest report change: what refused input must leave alone."""
    names = [model._meta.table_name for model in ALL_MODELS]
    counts = ", ".join(f'(SELECT COUNT(*) FROM "{name}")' for name in names)
    with database.connection_context():  # one round trip: it runs twice per case
        row = database.execute_sql(f"SELECT {counts}, (SELECT MAX(updated_at) FROM bug_reports)").fetchone()
    return {**dict(zip(names, row[:-1], strict=True)), "max(bug_reports.updated_at)": row[-1]}


def _distinct_submission() -> dict[str, Any]:
    """A report of its own group. Not apilive's `submission`: Hypothesis reseeds `random` for every example,
    so its words would repeat and each fresh report would join the previous one's group."""
    word = "".join("ghijklmnopqrstuv"[int(c, 16)] for c in uuid.uuid4().hex[:14])
    return submission(
        title=f"KeyError in {word}()",
        stacktrace=f'Traceback (most recent call last):\n  File "/srv/app/payments/{word}.py", line 88, in {word}\n'
        f"    total = prices[key]\nKeyError: '{word}'",
    )


@dataclass
class Target:
    """A live server and the rows cases point at: a fresh report (and its claim) per case keeps cases apart."""

    server: LiveServer
    admin: httpx.Client
    ingest_key: str
    other: int  # a second canonical report, for merge

    def fresh(self) -> dict[str, str]:
        """A new open report, claimed by the admin token, with a running agent run: the ids a path needs."""
        with database.connection_context():
            report = service.create_report(_distinct_submission(), "seed").report
            claim = service.claim(report.number, "admin", lease_seconds=600)
            run = runs.start_agent_run(report.number, "admin")
        return {"ref": str(report.number), "uuid": str(report.id), "token": claim.token, "run": str(run.id)}

    def send(self, method: str, path: str, **kwargs: Any) -> Answer:
        return Answer.of(self.admin.request(method, path, **kwargs))

    def alive(self) -> bool:
        # A connection of its own (after a 5xx the server may drop the pooled keep-alive one), over a plain
        # socket: a new httpx client would load a TLS context each time, tens of milliseconds.
        try:
            head = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            return raw_request(self.server.url, head, timeout=30).status == 200
        except OSError:
            return False


def backend_url(kind: str, tmp: Path, postgres_url: str | None = None) -> str:
    """A migrated, empty database of ``kind`` (PostgreSQL: ``postgres_url``, emptied here)."""
    from bugdesk import db as dbmod

    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'hostile.db'}"
        db = dbmod.open_database(url)
        db.connect()
        dbmod.upgrade(db)
        db.close()
        return url
    assert postgres_url is not None
    db = dbmod.open_database(postgres_url)
    db.connect()
    tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    db.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    db.execute_sql("ALTER SEQUENCE bug_reports_number_seq RESTART WITH 1")
    db.close()
    return postgres_url


@contextlib.contextmanager
def live_target(database_url: str) -> Iterator[Target]:
    """A threaded live server over ``database_url`` with the usual tokens and two seeded reports."""
    settings = replace(Settings(), database_url=database_url, release="")
    with run_server(settings) as url:
        server = LiveServer(url=url, settings=settings)
        for name, scopes in TOKENS.items():
            server.add_token(name, scopes)
        with database.connection_context():
            other = service.create_report(_distinct_submission(), "seed").report.number
            service.create_report(_distinct_submission(), "seed")
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {server.secrets['admin']}"}, timeout=60)
        server.clients.append(admin)
        try:
            yield Target(server=server, admin=admin, ingest_key=server.secrets["ingest"], other=other)
        finally:
            for client in server.clients:
                client.close()


@dataclass(frozen=True)
class Endpoint:
    """A write endpoint with a valid body; ``{ref}``, ``{run}``, ``{token}``, ``{other}`` are filled per case."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def valid_endpoints() -> list[Endpoint]:
    return [
        Endpoint("create", "POST", "/api/bug-reports", {
            "title": "KeyError in hostile()", "description": "checkout failed", "severity": "high",
            "category": "crash", "component": "payments", "route": "/cart/{id}", "environment": "prod",
            "exception_type": "KeyError", "stacktrace": "Traceback (most recent call last):\nKeyError: 1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "request_id": "req-1", "release_sha": "abcdef1",
            "reporter_id": "ann", "assignee_id": "bob", "details": {"k": "v"},
            "created_at": "2024-01-01T00:00:00Z",
        }),
        Endpoint("triage", "PATCH", "/api/bug-reports/{ref}",
                 {"severity": "low", "category": "ui", "assignee_id": "bob", "component": "web"},
                 {"If-Match": "*"}),
        Endpoint("move", "PATCH", "/api/bug-reports/{ref}",
                 {"status": "closed", "close_reason": "done", "note": "n", "claim_token": "{token}", "version": 3}),
        Endpoint("resolve", "POST", "/api/bug-reports/{ref}/resolve",
                 {"claim_token": "{token}", "notes": "n", "commits": ["abcdef1"], "fixed_in_release": "1.0"}),
        Endpoint("reopen", "POST", "/api/bug-reports/{ref}/reopen", {"reason": "r", "version": 3}),
        Endpoint("note", "POST", "/api/bug-reports/{ref}/events", {"kind": "note", "body": "b", "data": {"k": "v"}}),
        Endpoint("claim", "POST", "/api/bug-reports/{ref}/claim", {"lease_seconds": 60}),
        Endpoint("heartbeat", "POST", "/api/bug-reports/{ref}/heartbeat",
                 {"claim_token": "{token}", "lease_seconds": 60}),
        Endpoint("release", "POST", "/api/bug-reports/{ref}/release", {"claim_token": "{token}", "reason": "r"}),
        Endpoint("start-run", "POST", "/api/bug-reports/{ref}/runs"),
        Endpoint("finish-run", "POST", "/api/runs/{run}/finish",
                 {"outcome": "failed", "commits": ["abcdef1"], "log": "l"}),
        Endpoint("merge", "POST", "/api/bug-reports/{ref}/merge", {"into": "{other}"}),
        Endpoint("split", "POST", "/api/bug-reports/{ref}/split"),
        Endpoint("add-release", "POST", "/api/releases", {
            "sha": "abcdef1", "version": "1.0", "environment": "prod", "deployed_at": "2024-01-01T00:00:00Z",
        }),
        Endpoint("create-token", "POST", "/api/tokens", {"name": "fuzzed-token", "scopes": ["read"]}),
        Endpoint("claim-next", "POST", "/api/claims/next", {
            "severities": ["high"], "categories": ["crash"], "components": ["payments"], "environment": "prod",
            "skip_failed": True, "lease_seconds": 60, "wait": 0,
        }),
    ]  # fmt: skip


def fill(value: Any, ids: dict[str, str]) -> Any:
    """``value`` with its ``{ref}``-style placeholders replaced by this case's ids."""
    if isinstance(value, str):
        for key, real in ids.items():
            value = value.replace("{" + key + "}", real)
        return value
    if isinstance(value, dict):
        return {fill(k, ids): fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def fresh_ids(target: Target) -> dict[str, str]:
    return {**target.fresh(), "other": str(target.other), "nonce": uuid.uuid4().hex[:8]}
