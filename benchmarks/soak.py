"""Soak: ingest offered at twice the sustained rate for minutes, while agents claim and resolve and a reader reads.

    uv run python benchmarks/soak.py [--minutes 10] [--factor 2] [--agents 4] [--markdown OUT.md]

Phases, against one `bugdesk serve` worker on a new SQLite file (127.0.0.1 only):

1. calibrate: 16 connections submit reports back to back for ``--calibrate-seconds``; the
   sustained ingest rate is what was acknowledged per second;
2. quiet: agents (claim-next -> agent_log note -> resolve, each on its own token) and the reader
   (``--read-rate`` GETs/s, a list page or one report) for ``--quiet-seconds``: the baseline;
3. storm: the same plus ingest offered open loop (paced arrivals, each on an idle connection,
   never waiting for earlier answers) at ``--factor`` times the sustained rate for ``--minutes``.
   A shed submission (429) is not retried: it counts as shed. The server's RSS is sampled
   every ``--rss-every`` seconds.

Then, with the server stopped, the database is checked: every acknowledged submission is stored
(each carries its own Idempotency-Key), no shed one is, every acknowledged resolve left its report
resolved and every acknowledged note is there. Pass criteria (`verdict`): no 5xx, no lost acknowledged
write, no hang (every request answered within 30 s), server RSS growth over the storm < 10 %, and the
storm's read p99 within max(``--read-p99-factor`` (2) x the quiet p99, ``--read-p99-floor-ms`` (50)).

Each role (ingest, agents, reader) runs in its own process with its own event loop, so a busy
ingest generator does not delay the reader's clock. All of them use raw keep-alive sockets
(benchmarks/_http.py): an httpx client would take a core from the server on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import socket
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import machine, percentiles, realistic_report
from _http import _read_response, bugdesk_server, cpu_seconds, free_port, request_bytes

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.config import Settings
from bugdesk.service import tokens

SEED_REPORTS = 500
REQUEST_TIMEOUT_S = 30.0  # an answer later than this counts as a hang
MAX_INGEST_CONNECTIONS = 256  # the open-loop generator's cap; an arrival finding none idle counts as not offered
KEEP_ALIVE_S = 3.0  # reuse an idle connection only this long: uvicorn closes them after 5 s


def _run(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)


class Conn:
    """One keep-alive HTTP/1.1 connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.monotonic()

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        answer = await asyncio.wait_for(_read_response(self.reader), REQUEST_TIMEOUT_S)
        self.last_used = time.monotonic()
        return answer

    @property
    def stale(self) -> bool:
        """Idle long enough that the server (uvicorn closes keep-alive connections idle for 5 s) may close it."""
        return time.monotonic() - self.last_used > KEEP_ALIVE_S

    def close(self) -> None:
        self.writer.close()


@dataclass
class Tally:
    """What one role saw: statuses, latencies and errors (transport failures and timeouts)."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def status(self, code: int) -> None:
        self.statuses[code] = self.statuses.get(code, 0) + 1

    def error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


# ------------------------------------------------------------------------------------------------ ingest


def _ingest_request(rng: random.Random, key: str, secret: str, bugs: int) -> bytes:
    body = json.dumps(realistic_report(rng, bugs)).encode()
    return request_bytes("POST", "/api/bug-reports", secret, body, {"Idempotency-Key": key})


async def _calibrate(port: int, secret: str, seconds: float, bugs: int, connections: int) -> dict[str, Any]:
    """Closed loop: ``connections`` clients submit back to back; the acknowledged rate is the sustained rate."""
    rng = random.Random(1)
    tally = Tally()
    counter = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal counter
        conn = await Conn.open(port)
        try:
            while time.perf_counter() < deadline:
                counter += 1
                request = _ingest_request(rng, f"soak-cal-{counter}", secret, bugs)
                start = time.perf_counter()
                status, _ = await conn.call(request)
                tally.latencies.append(time.perf_counter() - start)
                tally.status(status)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    ok = sum(n for code, n in tally.statuses.items() if 200 <= code < 300)
    return {
        "seconds": round(elapsed, 1),
        "acknowledged": ok,
        "statuses": tally.statuses,
        "per_second": round(ok / elapsed, 1),
        "latency_ms": {k: round(v, 1) for k, v in percentiles(tally.latencies).items()},
    }


async def _storm(port: int, secret: str, rate: float, seconds: float, bugs: int) -> dict[str, Any]:
    """Open loop: arrivals every 1/rate s, each sent at once on an idle connection; answers are not waited for."""
    rng = random.Random(2)
    tally = Tally()
    accepted_latencies: list[float] = []
    shed_latencies: list[float] = []
    acked: list[int] = []
    shed: list[int] = []
    unknown: list[int] = []  # no answer (transport error or timeout): stored or not, the client cannot know
    idle: list[Conn] = []
    open_count = 0
    not_offered = 0
    tasks: set[asyncio.Task] = set()

    async def one(n: int, request: bytes, conn: Conn | None) -> None:
        nonlocal open_count
        try:
            if conn is None:
                conn = await Conn.open(port)
            start = time.perf_counter()
            status, _ = await conn.call(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            tally.error(exc)
            unknown.append(n)
            if conn is not None:
                conn.close()
            open_count -= 1
            return
        seconds = time.perf_counter() - start
        tally.latencies.append(seconds)
        tally.status(status)
        if 200 <= status < 300:
            acked.append(n)
            accepted_latencies.append(seconds)
        elif status == 429:
            shed.append(n)
            shed_latencies.append(seconds)
        else:
            unknown.append(n)
        idle.append(conn)

    start = time.perf_counter()
    n = 0
    while True:
        now = time.perf_counter() - start
        if now >= seconds:
            break
        due = int(now * rate)
        while n < due:
            n += 1
            if not idle and open_count >= MAX_INGEST_CONNECTIONS:
                not_offered += 1
                continue
            while idle and idle[0].stale:  # least recently used first; the server may have closed these
                idle.pop(0).close()
                open_count -= 1
            conn = idle.pop() if idle else None  # taken here, so arrivals of one tick never share one
            open_count += conn is None
            task = asyncio.create_task(one(n, _ingest_request(rng, f"soak-{n}", secret, bugs), conn))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(0.002)
    if tasks:
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 5)
    elapsed = time.perf_counter() - start
    for conn in idle:
        conn.close()
    return {
        "offered": n - not_offered,
        "not_offered": not_offered,
        "offered_per_second": round((n - not_offered) / elapsed, 1),
        "acknowledged": len(acked),
        "acknowledged_per_second": round(len(acked) / elapsed, 1),
        "shed": len(shed),
        "unknown": len(unknown),
        "statuses": tally.statuses,
        "errors": tally.errors,
        "accepted_latency_ms": {k: round(v, 1) for k, v in percentiles(accepted_latencies or [0.0]).items()},
        "shed_latency_ms": {k: round(v, 1) for k, v in percentiles(shed_latencies or [0.0]).items()},
        "connections_open_at_end": open_count,
        "acked_keys": acked,
        "shed_keys": shed,
        "unknown_keys": unknown,
    }


# ------------------------------------------------------------------------------------------------ agents


async def _agents(port: int, secrets: list[str], seconds: float, think: float) -> dict[str, Any]:
    """Each agent: claim-next, an agent_log note, resolve with the claim token, think; a 429 is retried."""
    tally = Tally()
    resolved: list[int] = []
    notes = 0
    cycles = 0
    empty = 0
    deadline = time.perf_counter() + seconds

    async def call(conn: Conn, request: bytes) -> tuple[int, bytes]:
        # A 429 did nothing: wait as asked (1 s, spread) and send the same request again.
        while True:
            start = time.perf_counter()
            status, body = await conn.call(request)
            tally.latencies.append(time.perf_counter() - start)
            tally.status(status)
            if status != 429 or time.perf_counter() > deadline:
                return status, body
            await asyncio.sleep(random.uniform(1.0, 1.5))

    async def agent(secret: str) -> None:
        nonlocal notes, cycles, empty
        conn = await Conn.open(port)
        claim_next = request_bytes("POST", "/api/claims/next", secret, b'{"lease_seconds": 120}')
        try:
            while time.perf_counter() < deadline:
                status, body = await call(conn, claim_next)
                if status == 204:
                    empty += 1
                    await asyncio.sleep(0.2)
                    continue
                if status != 200:
                    await asyncio.sleep(0.2)
                    continue
                granted = json.loads(body)
                number, token = granted["report"]["number"], granted["claim_token"]
                note = json.dumps({"kind": "agent_log", "body": "soak: reproduced, guarding the lookup"}).encode()
                status, _ = await call(conn, request_bytes("POST", f"/api/bug-reports/{number}/events", secret, note))
                notes += 200 <= status < 300
                fix = json.dumps({"claim_token": token, "notes": "soak fix", "commits": ["abcdef1"]}).encode()
                status, _ = await call(conn, request_bytes("POST", f"/api/bug-reports/{number}/resolve", secret, fix))
                if status == 200:
                    resolved.append(number)
                cycles += 1
                await asyncio.sleep(think)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            tally.error(exc)
        finally:
            conn.close()

    await asyncio.gather(*(agent(s) for s in secrets))
    return {
        "cycles": cycles,
        "empty_queue_polls": empty,
        "acknowledged_notes": notes,
        "resolved": resolved,
        "statuses": tally.statuses,
        "errors": tally.errors,
        "latency_ms": {k: round(v, 1) for k, v in percentiles(tally.latencies or [0.0]).items()},
    }


# ------------------------------------------------------------------------------------------------ reader


async def _reader(port: int, secret: str, seconds: float, rate: float, numbers: int) -> dict[str, Any]:
    """Paced reads on one connection: every other one a list page of open reports, else one report's payload."""
    tally = Tally()
    rng = random.Random(4)
    conn = await Conn.open(port)
    listing = request_bytes("GET", "/api/bug-reports?status=open&limit=20", secret)
    start = time.perf_counter()
    n = 0
    try:
        while (now := time.perf_counter() - start) < seconds:
            n += 1
            due = n / rate
            if due > now:
                await asyncio.sleep(due - now)
            one = request_bytes("GET", f"/api/bug-reports/{rng.randint(1, numbers)}?events=5", secret)
            request = listing if n % 2 else one
            began = time.perf_counter()
            status, _ = await conn.call(request)
            tally.latencies.append(time.perf_counter() - began)
            tally.status(status)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
        tally.error(exc)
    finally:
        conn.close()
    return {
        "reads": len(tally.latencies),
        "statuses": tally.statuses,
        "errors": tally.errors,
        "latency_ms": {k: round(v, 2) for k, v in percentiles(tally.latencies or [0.0]).items()},
    }


# ------------------------------------------------------------------------------------------------ processes


def _role(name: str, args: tuple, pipe) -> None:
    fn = {"calibrate": _calibrate, "storm": _storm, "agents": _agents, "reader": _reader}[name]
    cpu = time.process_time()
    result = _run(fn(*args))
    result["client_cpu_s"] = round(time.process_time() - cpu, 1)
    pipe.send(result)
    pipe.close()


class Roles:
    """Role processes started together; `results` waits for all of them."""

    def __init__(self) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        self.running: dict[str, tuple[Any, Any]] = {}

    def start(self, name: str, role: str, *args: Any) -> None:
        parent, child = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(target=_role, args=(role, args, child), daemon=True)
        proc.start()
        child.close()
        self.running[name] = (proc, parent)

    def results(self, timeout: float) -> dict[str, dict[str, Any]]:
        out = {}
        for name, (proc, pipe) in self.running.items():
            if not pipe.poll(timeout):
                proc.kill()
                raise RuntimeError(f"the {name} role did not finish")
            out[name] = pipe.recv()
            proc.join(timeout=10)
        self.running.clear()
        return out


def memory(pid: int) -> dict[str, int]:
    """Resident memory of a process and its children (uvicorn's workers) from /proc, in kB: total, anonymous
    (the heap: SQLite's page caches live there) and file-backed; and how many SQLite connections are open
    (descriptors on the database file)."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    out = {"rss": 0, "anon": 0, "file": 0, "db_connections": 0}
    names = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                key = names.get(line.split(":", 1)[0] + ":")
                if key:
                    out[key] += int(line.split()[1])
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{p}/fd")
            out["db_connections"] += sum(1 for fd in fds.iterdir() if _readlink(fd).endswith("soak.db"))
    return out


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def sample_memory(pid: int, seconds: float, every: float, start: float) -> list[tuple[float, dict[str, int]]]:
    """`memory` every ``every`` seconds for ``seconds``; (seconds since ``start``, sample)."""
    samples = []
    deadline = time.monotonic() + seconds
    while True:
        samples.append((round(time.monotonic() - start, 1), memory(pid)))
        if time.monotonic() + every > deadline:
            break
        time.sleep(every)
    return samples


# ------------------------------------------------------------------------------------------------ checks


def seed(url: str, agents: int) -> dict[str, Any]:
    """Distinct open reports for the agents and the reader, and one token per role (per agent)."""
    rng = random.Random(3)
    with dbmod.connected(url):
        for i in range(SEED_REPORTS):
            word = "".join(rng.choice("ghijklmnopqrstuvwxyz") for _ in range(12))
            severity = rng.choice(["critical", "high", "medium", "low"])
            service.create_report({"title": f"{word} fails ({i})", "severity": severity}, "seed")
        _, ingest = tokens.create_token("soak-ingest", "ingest")
        _, reader = tokens.create_token("soak-reader", "read")
        agent_secrets = [tokens.create_token(f"soak-agent-{i}", "read,write")[1] for i in range(agents)]
    return {"ingest": ingest, "reader": reader, "agents": agent_secrets}


def verify(path: Path, storm: dict[str, Any], agents: list[dict[str, Any]]) -> dict[str, Any]:
    """What the database holds against what was acknowledged.

    Read with plain sqlite3, read-only: opening it through bugdesk would refuse (or migrate) a database
    whose schema is behind the working tree's migrations, which other work may have added during the run.
    """
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        keys = con.execute("SELECT idempotency_key FROM bug_reports WHERE idempotency_key LIKE 'soak-%'").fetchall()
        stored = {int(k[5:]) for (k,) in keys if not k.startswith("soak-cal-")}
        resolved = [n for a in agents for n in a["resolved"]]
        statuses = dict(con.execute("SELECT number, status FROM bug_reports").fetchall())
        notes = con.execute(
            "SELECT count(*) FROM bug_report_events WHERE kind = 'agent_log' AND actor LIKE 'soak-agent-%'"
        ).fetchone()[0]
        total = con.execute("SELECT count(*) FROM bug_reports").fetchone()[0]
    finally:
        con.close()
    acked, shed, unknown = set(storm["acked_keys"]), set(storm["shed_keys"]), set(storm["unknown_keys"])
    lost = acked - stored
    shed_stored = shed & stored
    unaccounted = stored - acked - unknown
    not_resolved = [n for n in resolved if statuses.get(n) not in ("resolved", "closed")]
    acked_notes = sum(a["acknowledged_notes"] for a in agents)
    return {
        "reports_in_database": total,
        "storm_submissions_stored": len(stored),
        "acknowledged_but_missing": len(lost),
        "shed_but_stored": len(shed_stored),
        "stored_without_acknowledgement": len(unaccounted),
        "resolves_acknowledged": len(resolved),
        "resolves_not_resolved_in_db": len(not_resolved),
        "notes_acknowledged": acked_notes,
        "notes_in_db": notes,
        "no_lost_acknowledged_write": not lost and not shed_stored and not unaccounted and not not_resolved
        and notes == acked_notes,
    }  # fmt: skip


def count_5xx(*tallies: dict[str, Any]) -> int:
    return sum(n for t in tallies for code, n in t["statuses"].items() if int(code) >= 500)


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--factor", type=float, default=2.0, help="offered ingest rate / sustained rate")
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--agent-think-ms", type=float, default=50.0)
    parser.add_argument("--read-rate", type=float, default=20.0, help="reader GETs per second")
    parser.add_argument("--bugs", type=int, default=20_000, help="distinct bugs the submissions are drawn from")
    parser.add_argument("--calibrate-seconds", type=float, default=20.0)
    parser.add_argument("--quiet-seconds", type=float, default=60.0)
    parser.add_argument("--rss-every", type=float, default=5.0)
    parser.add_argument(
        "--read-p99-factor", type=float, default=2.0, help="the storm's read p99 may be this many times the quiet one"
    )
    parser.add_argument(
        "--read-p99-floor-ms", type=float, default=50.0, help="...or up to this, when that is more (fast quiet p99)"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None, help="write the figures as a markdown snippet here")
    args = parser.parse_args()
    storm_seconds = args.minutes * 60
    print(machine(), flush=True)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{workdir / 'soak.db'}"
        secrets = seed(url, args.agents)
        port = free_port()
        roles = Roles()
        with bugdesk_server(url, port, workers=args.workers) as pid:
            t0 = time.monotonic()
            cpu0 = cpu_seconds(pid)
            roles.start("calibrate", "calibrate", port, secrets["ingest"], args.calibrate_seconds, args.bugs, 16)
            calibration = roles.results(args.calibrate_seconds + 120)["calibrate"]
            calibration["server_cpu_ms_per_report"] = round(
                (cpu_seconds(pid) - cpu0) * 1000 / max(calibration["acknowledged"], 1), 2
            )
            print(f"sustained ingest: {calibration['per_second']}/s", flush=True)

            roles.start("agents", "agents", port, secrets["agents"], args.quiet_seconds, args.agent_think_ms / 1000)
            roles.start("reader", "reader", port, secrets["reader"], args.quiet_seconds, args.read_rate, SEED_REPORTS)
            quiet_rss = sample_memory(pid, args.quiet_seconds, args.rss_every, t0)
            quiet = roles.results(120)
            print(f"quiet read p99: {quiet['reader']['latency_ms']['p99']} ms", flush=True)

            rate = calibration["per_second"] * args.factor
            cpu0 = cpu_seconds(pid)
            roles.start("ingest", "storm", port, secrets["ingest"], rate, storm_seconds, args.bugs)
            roles.start("agents", "agents", port, secrets["agents"], storm_seconds, args.agent_think_ms / 1000)
            roles.start("reader", "reader", port, secrets["reader"], storm_seconds, args.read_rate, SEED_REPORTS)
            storm_rss = sample_memory(pid, storm_seconds, args.rss_every, t0)
            storm = roles.results(REQUEST_TIMEOUT_S + 120)
            server_cpu = cpu_seconds(pid) - cpu0
        load_after = os.getloadavg()
        # Kept before the check, so a failing check still leaves the run's figures.
        (Path(tempfile.gettempdir()) / "soak-last-run.json").write_text(
            json.dumps({"calibration": calibration, "quiet": quiet, "storm": storm, "rss": storm_rss}, default=str)
        )
        database = verify(workdir / "soak.db", storm["ingest"], [quiet["agents"], storm["agents"]])

    result = report(args, calibration, quiet, storm, quiet_rss, storm_rss, server_cpu, database)
    result["load_average"] = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]}
    print(json.dumps(result, indent=2))
    if args.markdown:
        args.markdown.write_text(markdown(args, result))


def report(args, calibration, quiet, storm, quiet_rss, storm_rss, server_cpu, database) -> dict[str, Any]:
    ingest = {k: v for k, v in storm["ingest"].items() if not k.endswith("_keys")}
    rss_start, rss_end = storm_rss[0][1]["rss"], storm_rss[-1][1]["rss"]
    growth = (rss_end - rss_start) / rss_start * 100
    half = storm_rss[len(storm_rss) // 2 :]
    slope = (half[-1][1]["rss"] - half[0][1]["rss"]) / 1024 / max((half[-1][0] - half[0][0]) / 60, 1e-9)
    # From mid-storm on: growth after SQLite's page caches (sqlite_pool_cache_mb per pooled connection) have filled.
    half_growth = (half[-1][1]["rss"] - half[0][1]["rss"]) / half[0][1]["rss"] * 100
    fives = count_5xx(storm["ingest"], storm["agents"], storm["reader"], quiet["agents"], quiet["reader"])
    quiet_p99, storm_p99 = quiet["reader"]["latency_ms"]["p99"], storm["reader"]["latency_ms"]["p99"]
    # Relative to the same run's quiet baseline: absolute latencies move with the load of the shared machine.
    read_bound = max(args.read_p99_factor * quiet_p99, args.read_p99_floor_ms)
    agents = {k: (len(v) if k == "resolved" else v) for k, v in storm["agents"].items()}
    verdict = {
        "no_5xx": fives == 0,
        "no_lost_acknowledged_write": database["no_lost_acknowledged_write"],
        "rss_growth_under_10_percent": growth < 10,
        "read_p99_within_bound": storm_p99 <= read_bound,
        "no_hang": not any(t["errors"] for t in (storm["ingest"], storm["agents"], storm["reader"])),
    }
    return {
        "settings": {
            "minutes": args.minutes,
            "factor": args.factor,
            "agents": args.agents,
            "agent_think_ms": args.agent_think_ms,
            "read_rate": args.read_rate,
            "bugs": args.bugs,
            "workers": args.workers,
            "read_p99_bound": f"max({args.read_p99_factor:g} x quiet p99, {args.read_p99_floor_ms:g} ms)",
        },
        "calibration": calibration,
        "storm_ingest": ingest,
        "storm_agents": agents,
        "quiet_agents": {k: (len(v) if k == "resolved" else v) for k, v in quiet["agents"].items()},
        "reads": {
            "quiet": quiet["reader"],
            "storm": storm["reader"],
            "p99_ratio": round(storm_p99 / quiet_p99, 2),
            "p99_bound_ms": round(read_bound, 1),
        },
        "server_cpu_share_of_a_core_in_storm": round(server_cpu / (args.minutes * 60), 2),
        "responses_5xx": fives,
        "rss_mb": {
            "quiet_start": round(quiet_rss[0][1]["rss"] / 1024, 1),
            "storm_start": round(rss_start / 1024, 1),
            "storm_end": round(rss_end / 1024, 1),
            "storm_max": round(max(m["rss"] for _, m in storm_rss) / 1024, 1),
            "growth_percent": round(growth, 1),
            "second_half_slope_mb_per_min": round(slope, 2),
            "second_half_growth_percent": round(half_growth, 1),
            # (seconds, total MB, anonymous MB, file-backed MB, open SQLite connections)
            "samples": [_mb(t, m) for t, m in storm_rss[:: max(1, len(storm_rss) // 20)]],
        },
        "database": database,
        "verdict": verdict,
    }


def _admission() -> str:
    d = Settings()
    return (
        f"{d.api_max_in_flight} in flight, {d.api_max_writes_in_flight} writes, {d.api_max_ingest_in_flight} "
        f"submissions, {d.api_queue_wait_ms} ms wait, {d.api_ingest_queue_target_ms} ms write-queue target; "
        f"SQLite pool of {d.sqlite_pool_size} connections with {d.sqlite_pool_cache_mb} MB page cache each"
    )


def _mb(t: float, m: dict[str, int]) -> tuple:
    return (t, round(m["rss"] / 1024, 1), round(m["anon"] / 1024, 1), round(m["file"] / 1024, 1), m["db_connections"])


def markdown(args, r: dict[str, Any]) -> str:
    cal, ing, reads, rss, db = r["calibration"], r["storm_ingest"], r["reads"], r["rss_mb"], r["database"]
    agents = r["storm_agents"]
    ok = "yes" if all(r["verdict"].values()) else "NO: " + ", ".join(k for k, v in r["verdict"].items() if not v)
    lines = [
        "## Soak: ingest at twice the sustained rate (`benchmarks/soak.py`)",
        "",
        f"Machine: {machine()}. Load average before / after: {r['load_average']['before']} / "
        f"{r['load_average']['after']} (the machine is shared).",
        f"One `bugdesk serve` worker on SQLite, default admission settings ({_admission()}); {args.agents} agents, "
        "a reader at "
        f"{args.read_rate:g} GETs/s, submissions drawn from {args.bugs} bugs. Raw-socket clients "
        "(benchmarks/_http.py), one process per role.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| sustained ingest (calibration, 16 clients, {cal['seconds']} s) | {cal['per_second']} /s "
        f"({cal['server_cpu_ms_per_report']} ms server CPU a report) |",
        f"| storm: offered (open loop, {args.factor:g}x) for {args.minutes:g} min | {ing['offered_per_second']} /s "
        f"({ing['offered']} submissions) |",
        f"| storm: acknowledged (stored) | {ing['acknowledged_per_second']} /s ({ing['acknowledged']}) |",
        f"| storm: shed with 429 + Retry-After | {ing['shed']} |",
        f"| storm: no answer / other status | {ing['unknown']} |",
        f"| storm: latency of an accepted submission p50 / p99 | {ing['accepted_latency_ms']['p50']} / "
        f"{ing['accepted_latency_ms']['p99']} ms |",
        f"| storm: latency of a shed one (429) p50 / p99 | {ing['shed_latency_ms']['p50']} / "
        f"{ing['shed_latency_ms']['p99']} ms |",
        f"| agents in the storm: claim → note → resolve cycles | {agents['cycles']} ({agents['resolved']} resolved) |",
        f"| agents in the storm: call p50 / p99 | {agents['latency_ms']['p50']} / {agents['latency_ms']['p99']} ms |",
        f"| **read p99, quiet → storm** | **{reads['quiet']['latency_ms']['p99']} → "
        f"{reads['storm']['latency_ms']['p99']} ms** (x{reads['p99_ratio']}; bound {reads['p99_bound_ms']} ms = "
        f"max({args.read_p99_factor:g} x quiet, {args.read_p99_floor_ms:g} ms)) |",
        f"| read p50, quiet → storm | {reads['quiet']['latency_ms']['p50']} → "
        f"{reads['storm']['latency_ms']['p50']} ms |",
        f"| 5xx answers (all roles) | {r['responses_5xx']} |",
        f"| acknowledged but not stored / shed but stored | {db['acknowledged_but_missing']} / "
        f"{db['shed_but_stored']} |",
        f"| **server RSS, storm start → end (max)** | **{rss['storm_start']} → {rss['storm_end']} MB "
        f"({rss['growth_percent']:+.1f} %)**, max {rss['storm_max']} MB; second half "
        f"{rss['second_half_growth_percent']:+.1f} % ({rss['second_half_slope_mb_per_min']:+.2f} MB/min) |",
        f"| server CPU in the storm | {r['server_cpu_share_of_a_core_in_storm']} cores |",
        f"| all criteria met | {ok} |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
