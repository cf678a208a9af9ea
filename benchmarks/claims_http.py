"""Agent API claims: 8 agents call claim-next over HTTP until the queue is empty.

    uv run python benchmarks/claims_http.py [--reports 5000] [--agents 8] [--workers 1] [--postgres URL]

The queue is seeded through the service layer (not measured): distinct open reports of mixed
severity. Each agent holds one keep-alive connection and repeats `POST /api/claims/next` until
it is answered 204. The script checks afterwards that every report was claimed exactly once
(one `claimed` event each) and prints claims/s and latency percentiles. The load generator is
the raw-socket client of benchmarks/_http.py.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from _common import machine
from _http import bugdesk_server, cpu_seconds, drive, dumps, free_port, request_bytes, summary

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service import tokens

WORDS = "ghijklmnopqrstuvwxyz"


def seed(url: str, count: int) -> str:
    """``count`` distinct open reports and an agent token; returns the token's secret."""
    rng = random.Random(3)
    with dbmod.connected(url):
        if url.startswith("postgres"):
            tables = ", ".join(f'"{t}"' for t in ("agent_runs", "bug_report_events", "bug_report_dedup", "bug_reports"))
            dbmod.database.execute_sql(f"TRUNCATE {tables} CASCADE")
            dbmod.database.execute_sql("DELETE FROM api_tokens WHERE name = 'bench-agents'")
        for i in range(count):
            word = "".join(rng.choice(WORDS) for _ in range(12))
            severity = rng.choices(["critical", "high", "medium", "low"], [5, 20, 50, 25])[0]
            service.create_report({"title": f"{word} fails ({i})", "severity": severity}, "seed")
        _, secret = tokens.create_token("bench-agents", "read,write")
    return secret


def verify(url: str, count: int) -> dict:
    with dbmod.connected(url):
        claimed = BugReport.select().where(BugReport.claimed_by == "bench-agents").count()
        events = BugReportEvent.select().where(BugReportEvent.kind == "claimed").count()
    return {"claimed_reports": claimed, "claimed_events": events, "each_exactly_once": claimed == events == count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=5000)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (its bugdesk tables are emptied)")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite:///{Path(tmp) / 'claims.db'}"
        secret = seed(url, args.reports)
        request = request_bytes("POST", "/api/claims/next", secret, b"{}")
        port = free_port()
        with bugdesk_server(url, port, workers=args.workers) as pid:
            cpu0 = cpu_seconds(pid)
            result = drive(port, [request], args.agents, until_204=True)
            server_cpu = cpu_seconds(pid) - cpu0
        out = summary(result, server_cpu, args.reports)
        out["claims_per_second"] = round(result.statuses.get(200, 0) / result.seconds, 1)
        out["database"] = verify(url, args.reports)
    print(dumps({"backend": "postgresql" if args.postgres else "sqlite", "agents": args.agents, **out}))


if __name__ == "__main__":
    main()
