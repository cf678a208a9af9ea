"""SIGKILL a real `bugdesk serve` while clients submit reports, restart it, and audit what the database holds.

Shared by tests/reliability/test_crash_api.py (a few cycles per backend) and
benchmarks/crash_campaign.py (many cycles, figures for docs/benchmarks.md).

The server runs in its own session so one ``killpg`` takes uvicorn and anything it
spawned, as an OOM kill or a power-cut of the process would: no shutdown hook runs.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from peewee import SQL, fn

from bugdesk import db as dbmod
from bugdesk import ops
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent

# A handful of bugs, each filed again and again (new line numbers, new message values), so dedup
# groups grow while the server dies: half-written grouping would show as a count off by one.
_EXCEPTIONS = ("KeyError", "ValueError", "TypeError", "AttributeError", "LookupError")
_COMPONENTS = ("billing", "search", "checkout", "uploads")


def word(rng: random.Random) -> str:
    # Letters only: the fingerprint keeps them (digits and hex-looking runs become placeholders).
    return "".join(rng.choice("ghijklmnopqrstuvwxyz") for _ in range(10))


def bug_catalogue(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` distinct bug identities (exception type, component, in-app call path)."""
    rng = random.Random(seed)
    bugs = []
    for _ in range(count):
        component = rng.choice(_COMPONENTS)
        frames = [(f"{component}/{word(rng)}.py", word(rng)) for _ in range(rng.randint(2, 4))]
        bugs.append({"exc": rng.choice(_EXCEPTIONS), "component": component, "frames": frames})
    return bugs


def report_body(bug: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One occurrence of ``bug``: same fingerprint as every other occurrence, different text around it."""
    lines = ["Traceback (most recent call last):"]
    for path, func in bug["frames"]:
        lines += [f'  File "/srv/app/{path}", line {rng.randint(10, 900)}, in {func}', f"    {func}(payload)"]
    lines.append(f"{bug['exc']}: 'value {rng.randint(1, 10**6)}'")
    return {
        "title": f"{bug['exc']} in {bug['frames'][-1][1]}()",
        "severity": rng.choice(["critical", "high", "medium", "low"]),
        "component": bug["component"],
        "environment": "production",
        "stacktrace": "\n".join(lines),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """``bugdesk serve`` on a fresh loopback port per start; ``kill`` is SIGKILL to its whole process group."""

    def __init__(self, database_url: str, workdir: Path, *, workers: int = 1) -> None:
        self.database_url = database_url
        self.workdir = Path(workdir)
        self.workers = workers
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.starts = 0

    def start(self, timeout: float = 60.0) -> str:
        port = free_port()
        self.starts += 1
        # A log file, not a pipe: nobody reads the pipe during the load, and a full one would stall the server.
        log = open(self.workdir / f"serve-{self.starts}.log", "wb")  # noqa: SIM115 (the child owns it)
        command = [sys.executable, "-m", "bugdesk", "serve", "--port", str(port), "--log-level", "warning"]
        self.proc = subprocess.Popen(
            [*command, "--workers", str(self.workers)],
            cwd=self.workdir,  # so no bugdesk.toml of the repository is read
            env={**os.environ, "BUGDESK_DATABASE_URL": self.database_url},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bugdesk serve exited with {self.proc.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return self.url
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"bugdesk serve not healthy within {timeout} s: {self.log_tail()}")
            time.sleep(0.02)

    def log_tail(self) -> str:
        path = self.workdir / f"serve-{self.starts}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), for the end of a run."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None


@dataclass
class Attempt:
    """One submission: its Idempotency-Key, body, and what (if anything) came back."""

    key: str
    body: dict[str, Any]
    status: int | None = None
    answer: dict[str, Any] | None = None
    error: str | None = None
    sent_at: float = 0.0  # time.monotonic() when the request went out

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(http: httpx.Client, attempt: Attempt) -> None:
    attempt.sent_at = time.monotonic()
    try:
        response = http.post("/api/bug-reports", json=attempt.body, headers={"Idempotency-Key": attempt.key})
    except httpx.TransportError as exc:
        attempt.error = type(exc).__name__
        return
    attempt.status = response.status_code
    if attempt.acknowledged:
        attempt.answer = response.json()
    else:
        attempt.error = response.text[:300]


def load_then_kill(
    server: ServeProcess, secret: str, bugs: list[dict[str, Any]], *, clients: int, kill_after: float, seed: int
) -> tuple[list[Attempt], float]:
    """``clients`` threads submit without pause; ``kill_after`` seconds after the first 2xx the server is SIGKILLed.

    Returns the attempts and the moment of the kill (``time.monotonic()``).
    """
    attempts: list[Attempt] = []
    lock = threading.Lock()
    killed = threading.Event()
    answered = threading.Event()
    base = server.url

    def client(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            while not killed.is_set():
                attempt = Attempt(key=uuid.uuid4().hex, body=report_body(rng.choice(bugs), rng))
                with lock:
                    attempts.append(attempt)
                post(http, attempt)
                if attempt.acknowledged:
                    answered.set()
                elif attempt.status is None:
                    # The connection failed: the server is gone. A client would back off here rather than
                    # fire more requests at a closed port (they would be retried below all the same).
                    return

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    # Timed from the first answer, not from the start: on a busy machine 16 threads can take a while to get
    # going, and a kill before any answer would test nothing.
    answered.wait(timeout=60)
    time.sleep(kill_after)
    # Killed before the clients are told to stop, so requests are in flight at every stage of their life.
    killed_at = time.monotonic()
    server.kill()
    killed.set()
    for t in threads:
        t.join(timeout=60)
    return attempts, killed_at


@dataclass
class Audit:
    """What the database holds, checked against what the clients were told."""

    reports: int = 0
    keys: dict[str, tuple[str, int]] = field(default_factory=dict)  # idempotency key -> (id, number)
    without_created: list[int] = field(default_factory=list)
    created_events: int = 0
    dedup_off: list[dict[str, Any]] = field(default_factory=list)
    doctor_failures: list[str] = field(default_factory=list)

    @property
    def half_written(self) -> int:
        return len(self.without_created) + len(self.dedup_off) + abs(self.created_events - self.reports)


def audit(database_url: str) -> Audit:
    """Read the database directly (not through the server that just died)."""
    result = Audit()
    with dbmod.connected(database_url) as database:
        rows = BugReport.select(BugReport.id, BugReport.number, BugReport.idempotency_key).tuples()
        for report_id, number, key in rows:
            result.reports += 1
            if key is not None:
                result.keys[key] = (str(report_id), number)
        created = BugReportEvent.select(BugReportEvent.id).where(
            (BugReportEvent.report == BugReport.id) & (BugReportEvent.kind == "created")
        )
        result.without_created = [n for (n,) in BugReport.select(BugReport.number).where(~fn.EXISTS(created)).tuples()]
        result.created_events = BugReportEvent.select().where(BugReportEvent.kind == "created").count()
        # The grouping invariant of bugdesk/service/dedup.py with no resolution, merge or split in play: each
        # fingerprint's row counts every report carrying it, and all but the canonical point at the canonical.
        carrying = dict(
            BugReport.select(BugReport.fingerprint, fn.COUNT(SQL("*"))).group_by(BugReport.fingerprint).tuples()
        )
        pointing = Counter(
            fp
            for fp, dup in BugReport.select(BugReport.fingerprint, BugReport.duplicate_of).tuples()
            if dup is not None
        )
        for row in BugReportDedup.select(BugReportDedup.fingerprint, BugReportDedup.occurrences):
            expected = carrying.get(row.fingerprint, 0)
            if row.occurrences != expected or row.occurrences != 1 + pointing.get(row.fingerprint, 0):
                result.dedup_off.append(
                    {
                        "fingerprint": row.fingerprint,
                        "occurrences": row.occurrences,
                        "reports": expected,
                        "duplicates": pointing.get(row.fingerprint, 0),
                    }
                )
        stray = BugReport.select().where(
            BugReport.duplicate_of.is_null(False),
            ~fn.EXISTS(
                BugReportDedup.select(BugReportDedup.id).where(
                    (BugReportDedup.fingerprint == BugReport.fingerprint)
                    & (BugReportDedup.canonical == BugReport.duplicate_of)
                )
            ),
        )
        result.dedup_off += [{"duplicate_without_its_group": r.number} for r in stray.limit(5)]
        result.doctor_failures = [f"{f.check}: {f.detail} {f.examples}" for f in ops.doctor(database) if not f.ok]
    return result


@dataclass
class Cycle:
    """One kill: what the clients saw, and what the restarted server's database held."""

    acknowledged: int
    unacknowledged: int  # every unanswered request, including those sent to the dead server after the kill
    in_flight: int  # unanswered requests sent before the kill
    refused: list[str]
    lost: list[str]  # acknowledged keys missing, or stored under another report than the one acknowledged
    half_written: int
    committed_in_flight: int  # unacknowledged before the kill, found stored (the retry was replayed)
    retry_failures: list[str]
    duplicates: int  # stored reports beyond one per distinct key sent
    missing_after_retry: int  # keys sent (in any cycle so far) with no report once the retries are done
    audit_before: Audit
    audit_after: Audit


def retry(server: ServeProcess, secret: str, attempts: list[Attempt]) -> list[Attempt]:
    """Send every unanswered submission again with its Idempotency-Key, as a client that saw the connection drop."""
    redo = [Attempt(key=a.key, body=a.body) for a in attempts if not a.acknowledged]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
        for attempt in redo:
            post(http, attempt)
    return redo


def kill_cycle(
    server: ServeProcess,
    secret: str,
    bugs: list[dict[str, Any]],
    sent_keys: set[str],
    *,
    clients: int = 16,
    kill_after: float = 1.5,
    seed: int = 0,
) -> Cycle:
    """Load, SIGKILL, restart, audit, retry the unanswered, audit again. ``server`` is running before and after."""
    attempts, killed_at = load_then_kill(server, secret, bugs, clients=clients, kill_after=kill_after, seed=seed)
    server.start()
    before = audit(server.database_url)
    acked = [a for a in attempts if a.acknowledged]
    lost = [
        a.key
        for a in acked
        if before.keys.get(a.key) != (a.answer["submission"]["id"], a.answer["submission"]["number"])
    ]
    # A non-2xx answer before the kill is a server that refused work it should have taken (not a crash effect).
    refused = [f"{a.status}: {a.error}" for a in attempts if a.status is not None and not a.acknowledged]
    unanswered = [a for a in attempts if not a.acknowledged]
    committed = sum(1 for a in unanswered if a.key in before.keys)
    redo = retry(server, secret, attempts)
    sent_keys.update(a.key for a in attempts)
    after = audit(server.database_url)
    failures = [f"{a.status}: {a.error}" for a in redo if not a.acknowledged]
    replay_mismatch = [
        a.key for a in redo if a.acknowledged and (a.key in before.keys) != bool(a.answer.get("replayed"))
    ]
    return Cycle(
        acknowledged=len(acked),
        unacknowledged=len(unanswered),
        in_flight=sum(1 for a in unanswered if a.sent_at < killed_at),
        refused=refused,
        lost=lost,
        half_written=before.half_written,
        committed_in_flight=committed,
        retry_failures=failures + [f"replayed flag wrong for {k}" for k in replay_mismatch],
        duplicates=after.reports - len(set(after.keys) & sent_keys),
        missing_after_retry=len(sent_keys - set(after.keys)),
        audit_before=before,
        audit_after=after,
    )
