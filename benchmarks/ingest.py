"""Agent API ingest: 16 concurrent HTTP clients POST realistic reports to `bugdesk serve` on SQLite.

    uv run python benchmarks/ingest.py [--reports 20000] [--bugs 200] [--clients 16] [--workers 1]

A report counts only when its 2xx came back, and a 2xx comes back only after the report and
its dedup bookkeeping are committed (creation is synchronous), which the script checks in the
database afterwards: every submission stored, one canonical per distinct bug, occurrences adding
up. The same payloads then go to a bare FastAPI app validating the same request model (no auth,
no database) as the same-run reference. The load generator is a raw-socket keep-alive client
(benchmarks/_http.py); its CPU share is printed.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import uuid
from pathlib import Path

from _common import machine, realistic_report
from _http import bugdesk_server, cpu_seconds, drive, dumps, free_port, reference_server, request_bytes, summary

from bugdesk import db as dbmod
from bugdesk.models import BugReport, BugReportDedup
from bugdesk.service import tokens


def payloads(count: int, bugs: int, token: str) -> list[bytes]:
    rng = random.Random(5)
    return [
        request_bytes(
            "POST",
            "/api/bug-reports",
            token,
            json.dumps(realistic_report(rng, bugs)).encode(),
            {"Idempotency-Key": uuid.uuid4().hex},
        )
        for _ in range(count)
    ]


def verify(url: str, count: int) -> dict:
    """What the database holds after the run."""
    with dbmod.connected(url):
        stored = BugReport.select().count()
        canonical = BugReport.select().where(BugReport.duplicate_of.is_null()).count()
        groups = BugReportDedup.select().count()
        occurrences = sum(r.occurrences for r in BugReportDedup.select(BugReportDedup.occurrences))
    return {
        "stored": stored,
        "canonical": canonical,
        "fingerprints": groups,
        "occurrences": occurrences,
        "all_stored_and_grouped": stored == count == occurrences,
    }


def bench_bugdesk(args, workdir: Path) -> dict:
    url = f"sqlite:///{workdir / 'ingest.db'}"
    with dbmod.connected(url):
        _, secret = tokens.create_token("bench-ingest", "ingest")
    requests = payloads(args.reports, args.bugs, secret)
    port = free_port()
    with bugdesk_server(url, port, workers=args.workers) as pid:
        cpu0 = cpu_seconds(pid)
        result = drive(port, requests, args.clients, keep_bodies=True)
        server_cpu = cpu_seconds(pid) - cpu0
    out = summary(result, server_cpu, args.reports)
    dedup = sum(1 for body in result.bodies if b'"deduplicated":true' in body)
    out["deduplicated_answers"] = dedup
    out["database"] = verify(url, args.reports)
    return out


def bench_reference(args) -> dict:
    requests = payloads(args.reports, args.bugs, "unused")
    port = free_port()
    with reference_server(port) as pid:
        cpu0 = cpu_seconds(pid)
        result = drive(port, requests, args.clients)
        server_cpu = cpu_seconds(pid) - cpu0
    return summary(result, server_cpu, args.reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--bugs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = {"bugdesk": bench_bugdesk(args, workdir)}
        if not args.no_reference:
            results["bare_fastapi_reference"] = bench_reference(args)
            ratio = results["bugdesk"]["per_second"] / max(results["bare_fastapi_reference"]["per_second"], 1e-9)
            results["ratio_to_reference"] = round(ratio, 3)
    print(dumps(results))


if __name__ == "__main__":
    main()
