"""Sentry ingest: 16 concurrent clients send 20,000 SDK-shaped envelopes (about 200 distinct bugs) to `bugdesk serve`.

    uv run python benchmarks/sentry_ingest.py [--events 20000] [--bugs 200] [--clients 16] [--gzip] [--load-script]

The envelopes have the shape `sentry_sdk` sends and /work/shared/anchors/sentry_load.py generates
(exception with 2-5 in-app frames under a deploy prefix, release, environment, trace context,
request URL, component tag). An event counts only when its 200 came back, and the 200 comes back
only after the report and its dedup row are committed; the script checks the database afterwards:
stored == acknowledged, one group per distinct bug, occurrences adding up. The load generator is
the raw-socket keep-alive client of benchmarks/_http.py (its CPU share is printed). With
``--load-script DSN-less`` the anchors' httpx script is run too, against the same server.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import machine
from _http import bugdesk_server, cpu_seconds, drive, dumps, free_port, summary

from bugdesk import db as dbmod
from bugdesk.models import BugReport, BugReportDedup
from bugdesk.service import tokens

LOAD_SCRIPT = Path("/work/shared/anchors/sentry_load.py")
COMPONENTS = ["payments", "billing", "auth", "search", "checkout", "inventory"]
TYPES = ["KeyError", "ValueError", "TypeError", "AttributeError", "ZeroDivisionError"]


def make_bugs(rng: random.Random, count: int) -> list[dict]:
    """Distinct bugs: each its own exception type, route and in-app call path (as sentry_load.py makes them)."""
    return [
        {
            "component": rng.choice(COMPONENTS),
            "type": rng.choice(TYPES),
            "msg": "bad value {n}",
            "route": f"/api/r{i}",
            "frames": [(f"mod{rng.randint(0, 9)}", f"fn{i}_{j}") for j in range(rng.randint(2, 5))],
        }
        for i in range(count)
    ]


def make_event(rng: random.Random, bug: dict) -> dict:
    frames = [
        {
            "filename": f"app/{bug['component']}/{module}.py",
            "module": f"app.{bug['component']}.{module}",
            "function": function,
            "lineno": rng.randint(10, 400),
            "in_app": True,
            "abs_path": f"/srv/app/releases/{rng.choice(['a1', 'b2', 'c3'])}/app/{bug['component']}/{module}.py",
            "context_line": "    total = prices[key]",
        }
        for module, function in bug["frames"]
    ]
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "release": rng.choice(["1.4.0", "1.4.1", "1.5.0"]),
        "environment": "prod",
        "exception": {
            "values": [
                {
                    "type": bug["type"],
                    "value": bug["msg"].format(n=rng.randint(1, 10**6)),
                    "mechanism": {"type": "generic", "handled": True},
                    "stacktrace": {"frames": frames},
                }
            ]
        },
        "contexts": {"trace": {"trace_id": uuid.uuid4().hex, "span_id": uuid.uuid4().hex[:16]}},
        "request": {"url": f"http://shop.local{bug['route']}", "method": "POST"},
        "tags": {"component": bug["component"]},
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
    }


def request_bytes(event: dict, key: str, compress: bool) -> bytes:
    payload = json.dumps(event).encode()
    head = json.dumps({"event_id": event["event_id"], "sent_at": "2026-11-24T00:00:00Z"}).encode()
    item = json.dumps({"type": "event", "length": len(payload)}).encode()
    body = head + b"\n" + item + b"\n" + payload + b"\n"
    headers = [
        "POST /api/1/envelope/ HTTP/1.1",
        "Host: 127.0.0.1",
        f"X-Sentry-Auth: Sentry sentry_version=7, sentry_key={key}, sentry_client=sentry.python/2.75.0",
        "Content-Type: application/x-sentry-envelope",
    ]
    if compress:
        body = gzip.compress(body, compresslevel=6)
        headers.append("Content-Encoding: gzip")
    headers.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def verify(url: str, acknowledged: int, bugs: int) -> dict:
    """What the database holds after the run: every acknowledged event stored and counted in its group."""
    with dbmod.connected(url):
        stored = BugReport.select().count()
        canonical = BugReport.select().where(BugReport.duplicate_of.is_null()).count()
        groups = BugReportDedup.select().count()
        occurrences = sum(r.occurrences for r in BugReportDedup.select(BugReportDedup.occurrences))
    return {
        "stored": stored,
        "acknowledged": acknowledged,
        "canonical": canonical,
        "fingerprints": groups,
        "distinct_bugs_sent": bugs,
        "occurrences": occurrences,
        "stored_equals_acknowledged": stored == acknowledged == occurrences,
    }


def run_load_script(dsn: str, args: argparse.Namespace, pid: int) -> dict:
    """The shared anchors' httpx load script against the same server (a heavier client; for comparison)."""
    cpu0 = cpu_seconds(pid)
    cmd = [sys.executable, str(LOAD_SCRIPT), dsn, "--events", str(args.events), "--concurrency", str(args.clients)]
    cmd += ["--bugs", str(args.bugs)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
    return result


def bench(args: argparse.Namespace, workdir: Path) -> dict:
    url = f"sqlite:///{workdir / 'sentry.db'}" if not args.db else args.db
    with dbmod.connected(url):
        _, key = tokens.create_token(f"bench-dsn-{uuid.uuid4().hex[:6]}", "ingest")
    rng = random.Random(args.seed)
    bugs = make_bugs(rng, args.bugs)
    requests = [request_bytes(make_event(rng, rng.choice(bugs)), key, args.gzip) for _ in range(args.events)]
    port = free_port()
    out: dict = {}
    with bugdesk_server(url, port, workers=args.workers) as pid:
        cpu0 = cpu_seconds(pid)
        result = drive(port, requests, args.clients)
        server_cpu = cpu_seconds(pid) - cpu0
        out["raw_socket_client"] = summary(result, server_cpu, args.events)
        ok = out["raw_socket_client"]["ok_2xx"]
        out["raw_socket_client"]["database"] = verify(url, ok, args.bugs)
        if args.load_script:
            before = verify(url, 0, args.bugs)["stored"]
            script = run_load_script(f"http://{key}@127.0.0.1:{port}/1", args, pid)
            acknowledged = sum(n for code, n in script["codes"].items() if str(code).startswith("2"))
            after = verify(url, 0, args.bugs)["stored"]
            script["stored_during_run"] = after - before
            script["stored_equals_acknowledged"] = after - before == acknowledged
            out["anchors_sentry_load_httpx"] = script
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--bugs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--gzip", action="store_true", help="gzip each envelope as sentry-sdk does by default")
    parser.add_argument("--load-script", action="store_true", help="also run anchors/sentry_load.py (httpx)")
    parser.add_argument("--db", default=None, help="a database URL instead of a fresh SQLite file")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        print(dumps(bench(args, Path(tmp))))


if __name__ == "__main__":
    main()
