"""Scale-out on PostgreSQL: ingest and claim-next throughput with one API host versus three (issue 11).

    uv run python benchmarks/scaleout.py [--reports 10000] [--clients 16] [--claims 3000] [--agents 8]
                                         [--rounds 3] [--out /tmp/scaleout.md]

Needs root: the hosts are network namespaces (benchmarks/_netns.py) on this machine, each
running `bugdesk serve --workers 1`, sharing one PostgreSQL 15 server in a namespace of its own.
The load generator runs in the root namespace and reaches the hosts over the bridge.

Configurations, same PostgreSQL server and same load:

- ``1 host``: every client connection goes to api1;
- ``3 hosts``: connection i goes to host i mod 3 (what a connection-balancing load balancer does);
- ``1 host, 3 workers``: api1 restarted with ``--workers 3``: as many server processes as three
  hosts, on one address, to tell "more hosts" from "more processes".

Ingest: 16 keep-alive clients POST realistic reports (benchmarks/ingest.py's payloads); a report
counts only when its 2xx came back, and the database is checked afterwards (every submission
stored and grouped). The tables are emptied before each run. Claim-next: agents repeat
``POST /api/claims/next`` until 204; the queue is reset to the same seeded open reports before
each run and every report must be claimed exactly once. CPU is read from /proc for every
process in the API namespaces and in the PostgreSQL namespace (its backends included), and for
the load generator; it is reported per request. The 1-host and 3-host runs are interleaved over
the rounds and the median round is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import time
from pathlib import Path

from _common import machine, percentiles
from _http import LoadResult, _read_response, request_bytes
from _netns import PG_BIN, Topology, context_switches_in, cpu_seconds_in, scaleout, switches_between
from ingest import payloads
from ingest import verify as verify_ingest

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service import tokens

WORDS = "ghijklmnopqrstuvwxyz"
REPORT_TABLES = "agent_runs, bug_report_events, bug_report_dedup, bug_reports"


async def _drive(targets: list[tuple[str, int]], requests: list[bytes], until_204: bool) -> LoadResult:
    """One keep-alive connection per target; each takes the next unsent request (or repeats requests[0])."""
    result = LoadResult(seconds=0.0)
    position = 0

    async def connection(host: str, port: int) -> None:
        nonlocal position
        reader, writer = await asyncio.open_connection(host, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                if until_204:
                    request = requests[0]
                elif position < len(requests):
                    request = requests[position]
                    position += 1
                else:
                    return
                start = time.perf_counter()
                writer.write(request)
                status, _ = await _read_response(reader)
                result.latencies.append(time.perf_counter() - start)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if until_204 and status == 204:
                    return
        finally:
            writer.close()

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(connection(host, port) for host, port in targets))
    result.seconds = time.perf_counter() - start
    result.client_cpu = time.process_time() - cpu
    return result


def drive(targets: list[tuple[str, int]], requests: list[bytes], *, until_204: bool = False) -> LoadResult:
    import uvloop

    return uvloop.run(_drive(targets, requests, until_204))


def targets_for(topo: Topology, hosts: int, connections: int) -> list[tuple[str, int]]:
    return [(topo.hosts[i % hosts].address, topo.hosts[i % hosts].port) for i in range(connections)]


def measured(topo: Topology, run) -> tuple[LoadResult, dict[str, float]]:
    """``run()`` with the CPU of the API namespaces and the PostgreSQL namespace around it."""
    namespaces = [h.ns for h in topo.hosts]
    api0 = sum(cpu_seconds_in(ns) for ns in namespaces)
    pg0 = cpu_seconds_in(topo.pg_ns)
    switches0 = {ns: context_switches_in(ns) for ns in namespaces}
    result = run()
    cpu = {
        "api": sum(cpu_seconds_in(ns) for ns in namespaces) - api0,
        "postgres": cpu_seconds_in(topo.pg_ns) - pg0,
        "client": result.client_cpu,
    }
    result.api_switches = sum(switches_between(switches0[ns], context_switches_in(ns)) for ns in namespaces)
    return result, cpu


def figures(result: LoadResult, cpu: dict[str, float], ok: int) -> dict:
    total_cpu = sum(cpu.values())
    return {
        "ok": ok,
        "statuses": result.statuses,
        "seconds": round(result.seconds, 2),
        "per_second": round(ok / result.seconds, 1),
        "latency_ms": {k: round(v, 2) for k, v in percentiles(result.latencies).items()},
        "cpu_ms_per_request": {k: round(1000 * v / max(ok, 1), 3) for k, v in cpu.items()},
        "cpu_ms_per_request_total": round(1000 * total_cpu / max(ok, 1), 3),
        "cores_busy": round(total_cpu / result.seconds, 2),
        "api_context_switches_per_request": round(result.api_switches / max(ok, 1), 1),
    }


def empty_tables(url: str) -> None:
    with dbmod.connected(url):
        dbmod.database.execute_sql(f"TRUNCATE {REPORT_TABLES} CASCADE")


def ingest_run(topo: Topology, hosts: int, args, requests: list[bytes]) -> dict:
    empty_tables(topo.database_url)
    result, cpu = measured(topo, lambda: drive(targets_for(topo, hosts, args.clients), requests))
    out = figures(result, cpu, sum(n for status, n in result.statuses.items() if 200 <= status < 300))
    out["database"] = verify_ingest(topo.database_url, args.reports)
    if not out["database"]["all_stored_and_grouped"]:
        raise RuntimeError(f"ingest lost or misgrouped reports: {out['database']}")
    return out


def seed_queue(url: str, count: int) -> None:
    """``count`` distinct open reports of mixed severity (through the service layer, not measured)."""
    rng = random.Random(3)
    with dbmod.connected(url):
        dbmod.database.execute_sql(f"TRUNCATE {REPORT_TABLES} CASCADE")
        for i in range(count):
            word = "".join(rng.choice(WORDS) for _ in range(12))
            severity = rng.choices(["critical", "high", "medium", "low"], [5, 20, 50, 25])[0]
            service.create_report({"title": f"{word} fails ({i})", "severity": severity}, "seed")


def reset_queue(url: str) -> None:
    """Every seeded report open and unclaimed again, as right after seeding (not measured)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM bug_report_events WHERE kind = 'claimed'")
        conn.execute(
            "UPDATE bug_reports SET status = 'new', claimed_by = NULL, claim_token_hash = NULL,"
            " claim_expires_at = NULL WHERE claimed_by IS NOT NULL"
        )
        # The reset leaves a dead tuple per row; without a vacuum each run would start slower than the last.
        conn.execute("VACUUM ANALYZE bug_reports")
        conn.execute("VACUUM ANALYZE bug_report_events")


def claims_run(topo: Topology, hosts: int, args, secret: str) -> dict:
    reset_queue(topo.database_url)
    request = request_bytes("POST", "/api/claims/next", secret, b"{}")
    result, cpu = measured(topo, lambda: drive(targets_for(topo, hosts, args.agents), [request], until_204=True))
    out = figures(result, cpu, result.statuses.get(200, 0))
    with dbmod.connected(topo.database_url):
        claimed = BugReport.select().where(BugReport.claimed_by == "bench-claims").count()
        events = BugReportEvent.select().where(BugReportEvent.kind == "claimed").count()
    out["database"] = {"claimed": claimed, "events": events, "each_exactly_once": claimed == events == args.claims}
    if not out["database"]["each_exactly_once"]:
        raise RuntimeError(f"claims not exactly once: {out['database']}")
    return out


def connections_per_host(topo: Topology) -> dict[str, int]:
    """Open PostgreSQL connections by client address: what each host's pool holds after the runs."""
    import psycopg

    with psycopg.connect(topo.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT host(client_addr), count(*) FROM pg_stat_activity WHERE datname = 'bugdesk'"
            " AND client_addr IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return dict(rows)


def median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["per_second"])
    return {**ordered[len(ordered) // 2], "all_per_second": [r["per_second"] for r in runs]}


def markdown(results: dict, args, pg_version: str) -> str:
    lines = [
        "## Scale-out on PostgreSQL: one host versus three (issue 11)",
        "",
        f"`uv run python benchmarks/scaleout.py --reports {args.reports} --clients {args.clients} "
        f"--claims {args.claims} --agents {args.agents} --rounds {args.rounds}` (as root)",
        "",
        f"Machine: `{machine()}`, {pg_version}. Hosts are network namespaces on this one machine "
        "(benchmarks/_netns.py): api1-3 each run `bugdesk serve --workers 1`, PostgreSQL runs in a fourth "
        "namespace (default settings but `shared_buffers=64MB`, `fsync` on), the load generator in the root "
        "namespace; all share the same 2 cores. Median of the rounds; CPU per request counts every process of "
        "the API namespaces, of the PostgreSQL namespace (backends included) and the load generator. "
        f"Load average (1 min) {results['load_before'][0]:.1f} before, {results['load_after'][0]:.1f} after "
        "(the VM is shared with other engineers' test runs).",
        "",
    ]
    for kind, title, unit in (
        ("ingest", f"Ingest, {args.clients} clients, {args.reports:,} realistic reports per run", "reports/s"),
        ("claims", f"Claim-next, {args.agents} agents, {args.claims:,} open reports per run", "claims/s"),
    ):
        if kind not in results:
            continue
        lines += [
            f"### {title}",
            "",
            f"| configuration | {unit} (median; all rounds) | ratio to 1 host | p50 / p95 / p99 ms "
            "| CPU ms per request: API / PostgreSQL / client = total | cores busy | API context switches per request |",
            "|---|---|---|---|---|---|---|",
        ]
        base = results[kind]["1 host"]["per_second"]
        for name, r in results[kind].items():
            lat, cpu = r["latency_ms"], r["cpu_ms_per_request"]
            rounds = " / ".join(f"{v:,.0f}" for v in r["all_per_second"])
            lines.append(
                f"| {name} | **{r['per_second']:,.0f}** ({rounds}) | {r['per_second'] / base:.2f} "
                f"| {lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f} "
                f"| {cpu['api']:.2f} / {cpu['postgres']:.2f} / {cpu['client']:.2f} = "
                f"{r['cpu_ms_per_request_total']:.2f} | {r['cores_busy']:.2f} "
                f"| {r['api_context_switches_per_request']:.1f} |"
            )
        lines.append("")
    if "connections" in results:
        held = ", ".join(f"{addr}: {n}" for addr, n in results["connections"].items())
        lines += [f"PostgreSQL connections held by the hosts' pools after the runs: {held}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--bugs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--claims", type=int, default=3_000, help="open reports in the claim-next queue (0: skip)")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/helper_scaleout_benchmarks.md"))
    args = parser.parse_args()
    print(machine())
    results: dict = {"load_before": os.getloadavg()}
    with scaleout(hosts=3) as topo:
        pg_version = subprocess.run(
            [str(PG_BIN / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        with dbmod.connected(topo.database_url):
            ingest_secret = tokens.create_token("bench-ingest", "ingest")[1]
            claims_secret = tokens.create_token("bench-claims", "read,write")[1]
        requests = payloads(args.reports, args.bugs, ingest_secret)
        names = ("1 host", "3 hosts", "1 host, 3 workers")
        ingest: dict[str, list[dict]] = {name: [] for name in names}
        claims: dict[str, list[dict]] = {name: [] for name in names}

        def run_rounds(configs: list[tuple[str, int]]) -> None:
            # Rounds interleave the configurations, so a slow stretch of the shared VM hits each of them.
            if args.claims:
                seed_queue(topo.database_url, args.claims)
                for round_no in range(args.rounds):
                    for name, hosts in configs:
                        claims[name].append(claims_run(topo, hosts, args, claims_secret))
                        print(f"round {round_no + 1} claims {name}: {claims[name][-1]['per_second']}/s", flush=True)
            for round_no in range(args.rounds):
                for name, hosts in configs:
                    ingest[name].append(ingest_run(topo, hosts, args, requests))
                    print(f"round {round_no + 1} ingest {name}: {ingest[name][-1]['per_second']}/s", flush=True)

        run_rounds([("1 host", 1), ("3 hosts", 3)])
        results["connections"] = connections_per_host(topo)
        # The control: as many server processes as three hosts, all on api1.
        api1 = topo.hosts[0]
        topo.stop_server(api1)
        topo.start_server(api1, workers=3)
        topo.wait_healthy(api1)
        run_rounds([("1 host, 3 workers", 1)])
        results["ingest"] = {name: median_run(runs) for name, runs in ingest.items()}
        if args.claims:
            results["claims"] = {name: median_run(runs) for name, runs in claims.items()}
    results["load_after"] = os.getloadavg()
    text = markdown(results, args, pg_version)
    args.out.write_text(text + "\n")
    print(json.dumps(results, indent=2, default=str))
    print(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
