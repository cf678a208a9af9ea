"""MCP tool-call round trips over stdio: `get_report` and `claim_next` on a database of 100,000 reports.

    uv run python benchmarks/mcp_roundtrip.py [--rows 100000] [--calls 1000] [--postgres URL] [--workdir DIR]

The client is the official SDK's (``mcp.client.Client`` over ``StdioServerParameters``); the server is
``python -m bugdesk --db URL mcp``, a real subprocess, exactly as an MCP client starts it. Each figure is
the wall time of one ``call_tool`` as the client sees it (request out, JSON-RPC over the pipes, worker
thread, service call, JSON back, the SDK's result validation), calls one after another.

Same-run references: a ``prompts/list`` round trip on the same connection (the transport's floor: no
database, client cache off), and the same service call made directly in this process (what the database
work costs without MCP). Both protocol eras are measured: ``legacy`` (the initialize handshake most
clients speak today) and ``auto`` (the SDK's default, 2026-07-28 when both ends support it).

The 100,000 rows are seeded with executemany (as in service_bench.py; not what is measured), then
``--rich`` reports go through the service layer with realistic stack traces, so the reports read by
``get_report`` carry a dedup group, repo path hints and a timeline like real ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

# Named mcp_roundtrip.py, not mcp.py: a benchmarks/mcp.py shadowed the SDK's `mcp` package for every
# other script in this folder that imports the API (which mounts the MCP endpoint).
import anyio
from _common import machine, percentiles, realistic_report
from mcp import StdioServerParameters
from mcp.client import Client
from mcp_types import Implementation
from service_bench import seed

from bugdesk import db as dbmod
from bugdesk import payload, service
from bugdesk.config import Settings


def add_rich_reports(url: str, count: int) -> list[int]:
    """``count`` reports with stack traces through the service layer, each with a note; their numbers."""
    rng = random.Random(11)
    settings = Settings()
    numbers = []
    with dbmod.connected(url, settings):
        for _ in range(count):
            created = service.create_report(realistic_report(rng), "bench", settings=settings)
            report = created.canonical or created.report
            service.add_note(report.number, "bench", "looked at it: " + "details " * 20)
            numbers.append(report.number)
    return sorted(set(numbers))


def direct(url: str, numbers: list[int], calls: int) -> dict[str, dict[str, float]]:
    """The same service calls in this process, one connection: what MCP adds is the difference."""
    rng = random.Random(5)
    get, claim = [], []
    with dbmod.connected(url):
        for _ in range(calls):
            start = time.perf_counter()
            payload.report_payload(payload.load_report(rng.choice(numbers)))
            get.append(time.perf_counter() - start)
        for _ in range(calls // 4):
            start = time.perf_counter()
            payload.report_payload(service.claim_next("bench-direct").report)
            claim.append(time.perf_counter() - start)
    return {"get_report": rounded(percentiles(get)), "claim_next": rounded(percentiles(claim))}


def rounded(figures: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 2) for name, value in figures.items()}


async def over_stdio(url: str, numbers: list[int], calls: int, workdir: Path, mode: str) -> dict[str, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUGDESK_")}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "bugdesk", "--db", url, "mcp"], env=env, cwd=str(workdir)
    )
    rng = random.Random(5)
    samples: dict[str, list[float]] = {"floor": [], "get_report": [], "claim_next": []}
    info = Implementation(name="bench-agent", version="1")
    started = time.perf_counter()
    async with Client(params, client_info=info, mode=mode, cache=None) as client:
        startup = time.perf_counter() - started
        for _ in range(50):  # warm-up: imports, the connection pool, SQLite's page cache
            await client.call_tool("get_report", {"number": rng.choice(numbers)})
            await client.list_prompts()
        for _ in range(calls):
            start = time.perf_counter()
            await client.list_prompts()
            samples["floor"].append(time.perf_counter() - start)
            start = time.perf_counter()
            result = await client.call_tool("get_report", {"number": rng.choice(numbers)})
            samples["get_report"].append(time.perf_counter() - start)
            assert not result.is_error, result.content[0].text
        for _ in range(calls):
            start = time.perf_counter()
            result = await client.call_tool("claim_next", {})
            samples["claim_next"].append(time.perf_counter() - start)
            assert not result.is_error and result.structured_content["claimed"], result.content[0].text
        size = len(result.content[0].text)
        protocol = client.protocol_version
    out = {name: rounded(percentiles(values)) for name, values in samples.items()}
    out["protocol"] = protocol  # type: ignore[assignment]
    out["startup_s"] = round(startup, 2)  # type: ignore[assignment]
    out["claim_answer_bytes"] = size  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rich", type=int, default=500, help="reports created through the service layer")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--postgres", help="a postgresql:// URL of an empty database to use instead of SQLite")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bugdesk-mcp-bench-"))
    url = args.postgres or str(workdir / "bench.db")
    seconds = seed(url, args.rows)
    numbers = add_rich_reports(url, args.rich)
    db_url = url if args.postgres else f"sqlite:///{url}"
    stdio = {mode: anyio.run(over_stdio, db_url, numbers, args.calls, workdir, mode) for mode in ("legacy", "auto")}
    reference = direct(url, numbers, args.calls)
    print(
        json.dumps(
            {
                "machine": machine(),
                "database": "postgresql" if args.postgres else "sqlite",
                "rows": args.rows + args.rich,
                "seed_seconds": round(seconds, 1),
                "calls": args.calls,
                "stdio": stdio,
                "direct_service_call": reference,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
