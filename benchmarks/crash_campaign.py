"""Crash campaign: SIGKILL `bugdesk serve` N times while 16 clients file reports, on SQLite and PostgreSQL.

    uv run python benchmarks/crash_campaign.py [--cycles 20] [--backend both|sqlite|postgres]
        [--clients 16] [--max-seconds 300] [--pg-url URL] [--pg-admin-url URL] [--markdown FILE]

Each cycle: 16 httpx clients submit without pause (8 recurring bugs, so dedup groups grow, each
request with its own Idempotency-Key); a random 0.5-2 s after the first answer the server's process
group gets SIGKILL; the server restarts on the same database; the database is audited (every acknowledged
report stored as acknowledged, with its `created` event; every dedup count equal to its group;
`ops.doctor` clean); every unanswered submission is retried with its key; the audit runs again
(one report per key, nothing missing). Loopback only. The PostgreSQL run uses a throw-away
database created through ``--pg-admin-url`` and dropped afterwards, unless ``--pg-url`` names one
(its bugdesk tables are emptied). The harness is tests/reliability/crashkit.py, shared with
tests/reliability/test_crash_api.py.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import machine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "reliability"))

from crashkit import ServeProcess, bug_catalogue, kill_cycle

from bugdesk import db as dbmod
from bugdesk.models import ALL_MODELS
from bugdesk.service import tokens


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def _empty_postgres(url: str) -> None:
    with dbmod.connected(url) as database:
        tables = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
        database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        database.execute_sql("ALTER SEQUENCE bug_reports_number_seq RESTART WITH 1")


def campaign(url: str, workdir: Path, args: argparse.Namespace, rng: random.Random) -> dict:
    with dbmod.connected(url):
        _, secret = tokens.create_token(f"crash-{uuid.uuid4().hex[:6]}", "ingest")
    bugs = bug_catalogue(8, seed=rng.randrange(10**6))
    server = ServeProcess(url, workdir)
    sent: set[str] = set()
    totals = {
        "cycles": 0,
        "acknowledged": 0,
        "in_flight": 0,
        "retried": 0,
        "committed_in_flight": 0,
        "acknowledged_but_lost": 0,
        "half_written": 0,
        "refused": 0,
        "retry_failures": 0,
        "duplicates_after_retry": 0,
        "missing_after_retry": 0,
        "doctor_failures": 0,
    }
    examples: list[str] = []
    started = time.monotonic()
    server.start()
    try:
        for n in range(args.cycles):
            if time.monotonic() - started > args.max_seconds:
                break
            cycle = kill_cycle(
                server, secret, bugs, sent, clients=args.clients, kill_after=rng.uniform(0.5, 2.0), seed=n
            )
            totals["cycles"] += 1
            totals["acknowledged"] += cycle.acknowledged
            totals["in_flight"] += cycle.in_flight
            totals["retried"] += cycle.unacknowledged
            totals["committed_in_flight"] += cycle.committed_in_flight
            totals["acknowledged_but_lost"] += len(cycle.lost)
            totals["half_written"] += cycle.half_written
            totals["refused"] += len(cycle.refused)
            totals["retry_failures"] += len(cycle.retry_failures)
            # Figures of the last audit only grow, so the final one is what counts (kept per cycle for the log).
            totals["duplicates_after_retry"] = cycle.duplicates
            totals["missing_after_retry"] = cycle.missing_after_retry
            totals["doctor_failures"] += len(cycle.audit_before.doctor_failures)
            examples += cycle.lost[:3] + cycle.refused[:3] + cycle.retry_failures[:3]
            examples += [str(d) for d in cycle.audit_before.dedup_off[:3]] + cycle.audit_before.doctor_failures[:3]
            print(
                f"  cycle {n + 1}: acknowledged {cycle.acknowledged}, in flight {cycle.in_flight} "
                f"(committed {cycle.committed_in_flight}), lost {len(cycle.lost)}, half-written {cycle.half_written}",
                flush=True,
            )
    finally:
        server.stop()
    totals["stored"] = cycle.audit_after.reports if totals["cycles"] else 0
    totals["seconds"] = round(time.monotonic() - started, 1)
    totals["examples"] = examples[:10]
    return totals


def markdown(results: dict[str, dict], args: argparse.Namespace) -> str:
    rows = [
        ("kill cycles run", "cycles"),
        ("reports acknowledged (2xx) before a kill", "acknowledged"),
        ("requests in flight at a kill (sent, unanswered)", "in_flight"),
        ("unanswered submissions retried with their key after the restart", "retried"),
        ("... of which had been committed before the kill (the retry was replayed)", "committed_in_flight"),
        ("reports stored after the last retry", "stored"),
        ("**acknowledged but lost** (must be 0)", "acknowledged_but_lost"),
        ("half-written found (report without `created`, dedup count off)", "half_written"),
        ("duplicates after idempotent retry", "duplicates_after_retry"),
        ("submissions missing after retry", "missing_after_retry"),
        ("doctor findings after restart", "doctor_failures"),
        ("wall time (s)", "seconds"),
    ]
    names = list(results)
    lines = [
        "## Crash safety: SIGKILL of the API server under load",
        "",
        f"`uv run python benchmarks/crash_campaign.py --cycles {args.cycles} --clients {args.clients}`  ",
        f"Machine: {machine()}",
        "",
        f"{args.clients} httpx clients submit reports of 8 recurring bugs (Idempotency-Key on each) to one "
        "`bugdesk serve` worker; a random 0.5-2 s after the first answer its process group gets SIGKILL, the "
        "server restarts on the same database, the database is audited, and every unanswered request is retried "
        "with its key. Run while other test suites shared the 2 cores, so the counts per cycle vary widely.",
        "",
        "| figure | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for label, key in rows:
        lines.append(f"| {label} | " + " | ".join(str(results[n][key]) for n in names) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20, help="kill cycles per backend")
    parser.add_argument("--backend", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=300, help="stop starting cycles after this per backend")
    parser.add_argument("--pg-url", default=None, help="an existing PostgreSQL database (its tables are emptied)")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the figures as markdown here")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(machine())
    rng = random.Random(args.seed)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bugdesk-crash-") as tmp:
        workdir = Path(tmp)
        if args.backend in ("both", "sqlite"):
            print("SQLite", flush=True)
            url = f"sqlite:///{workdir / 'crash.db'}"
            results["SQLite"] = campaign(url, workdir, args, rng)
        if args.backend in ("both", "postgres"):
            print("PostgreSQL", flush=True)
            name = None
            if args.pg_url:
                url = args.pg_url
                _empty_postgres(url)
            else:
                name = f"bugdesk_crash_{uuid.uuid4().hex[:8]}"
                _admin(args.pg_admin_url, f'CREATE DATABASE "{name}"')
                url = f"{args.pg_admin_url.rsplit('/', 1)[0]}/{name}"
            try:
                results["PostgreSQL"] = campaign(url, workdir, args, rng)
            finally:
                if name:
                    _admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(results, indent=2))
    text = markdown(results, args)
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    bad = sum(r["acknowledged_but_lost"] + r["half_written"] + r["duplicates_after_retry"] for r in results.values())
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
