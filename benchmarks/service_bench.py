"""Foundation figures on SQLite: create throughput, and claim-next / open-critical page latency at 1M rows.

    uv run python benchmarks/service_bench.py [--rows 1000000] [--creates 3000] [--workdir DIR]

The 1M-row database is seeded with plain executemany (building the data set
is not what is measured); everything timed goes through bugdesk's service
layer and queries. A plain-sqlite3 insert of the same report + event, one
transaction each, runs in the same process as the reference.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import machine, percentiles, realistic_report

from bugdesk import db as dbmod
from bugdesk import queries, service
from bugdesk.config import Settings
from bugdesk.errors import QueueEmpty
from bugdesk.queries import ReportFilter

FMT = "%Y-%m-%d %H:%M:%S.%f"


def bench_create(path: Path, count: int) -> dict:
    settings = Settings()
    rng = random.Random(1)
    payloads = [realistic_report(rng) for _ in range(count)]
    with dbmod.connected(str(path), settings):
        start = time.perf_counter()
        for payload in payloads:
            service.create_report(payload, "bench", settings=settings)
        elapsed = time.perf_counter() - start
    return {"reports": count, "seconds": elapsed, "per_second": count / elapsed}


def bench_raw_reference(path: Path, count: int) -> dict:
    """Plain sqlite3 into the same schema: a report and its event, one transaction each."""
    with dbmod.connected(str(path)):
        pass  # creates the schema
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=normal")
    rng = random.Random(1)
    payloads = [realistic_report(rng) for _ in range(count)]
    start = time.perf_counter()
    for i, p in enumerate(payloads, 1):
        now = datetime.now(UTC).strftime(FMT)
        rid = str(uuid.uuid4())
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO bug_reports (id, number, title, description, severity, category, status, source, "
            "component, route, environment, stacktrace, trace_id, request_id, needs_human, version, created_at, "
            "updated_at, sla_due_at) VALUES (?,?,?,?,?,?,'new','user',?,?,?,?,?,?,0,1,?,?,?)",
            (
                rid,
                i,
                p["title"],
                p["description"],
                p["severity"],
                p["category"],
                p["component"],
                p["route"],
                p["environment"],
                p["stacktrace"],
                p["trace_id"],
                p["request_id"],
                now,
                now,
                now,
            ),
        )
        conn.execute(
            "INSERT INTO bug_report_events (report_id, kind, actor, created_at) VALUES (?,?,?,?)",
            (rid, "created", "bench", now),
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return {"reports": count, "seconds": elapsed, "per_second": count / elapsed}


def _seed_rows(rows: int):
    """A realistic table: most reports done, ~7% open (recent ones), ~30% duplicates."""
    rng = random.Random(7)
    sla = Settings().sla_hours
    base = datetime(2023, 1, 1, tzinfo=UTC)
    span = (datetime.now(UTC) - base).total_seconds()
    canon: list[str] = []
    for i in range(1, rows + 1):
        created = base + timedelta(seconds=span * i / rows)
        severity = rng.choices(["critical", "high", "medium", "low"], [5, 20, 50, 25])[0]
        recent = i > rows * 0.9
        if recent and rng.random() < 0.7:
            status = rng.choice(["new", "triaged", "in_progress", "new"])
        else:
            status = rng.choice(["resolved", "closed", "closed"])
        rid = str(uuid.uuid4())
        dup = rng.choice(canon) if canon and rng.random() < 0.3 else None
        if dup is None:
            canon.append(rid)
            if len(canon) > 5000:
                canon.pop(0)
        due = created + timedelta(hours=sla[severity])
        yield (rid, i, f"seeded report {i}", severity, status, dup, created, created, due)


_SEED_SQL = (
    "INSERT INTO bug_reports (id, number, title, severity, category, status, source, duplicate_of_id, "
    "needs_human, version, created_at, updated_at, sla_due_at) VALUES ({p},{p},{p},{p},'crash',{p},'user',{p},"
    "{false},1,{p},{p},{p})"
)


def seed(url: str, rows: int) -> float:
    """Seed ``rows`` reports with executemany (SQLite file path or postgresql:// URL)."""
    with dbmod.connected(url):
        pass  # creates and migrates the schema
    start = time.perf_counter()
    if url.startswith("postgres"):
        import psycopg

        with psycopg.connect(url, autocommit=False) as conn:
            sql = _SEED_SQL.format(p="%s", false="false")
            batch = []
            for row in _seed_rows(rows):
                batch.append(row)
                if len(batch) == 20_000:
                    conn.cursor().executemany(sql, batch)
                    batch.clear()
            conn.cursor().executemany(sql, batch)
            conn.execute(f"SELECT setval('bug_reports_number_seq', {rows})")
            conn.commit()
            conn.execute("ANALYZE bug_reports")
        return time.perf_counter() - start
    conn = sqlite3.connect(url, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=off")
    sql = _SEED_SQL.format(p="?", false="0")
    batch = []
    for row in _seed_rows(rows):
        batch.append(tuple(v.strftime(FMT) if isinstance(v, datetime) else v for v in row))
        if len(batch) == 20_000:
            _flush(conn, sql, batch)
    _flush(conn, sql, batch)
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - start


def _flush(conn: sqlite3.Connection, sql: str, batch: list) -> None:
    conn.execute("BEGIN")
    conn.executemany(sql, batch)
    conn.execute("COMMIT")
    batch.clear()


def bench_claims(path: Path | str, threads: int, per_thread: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    database = dbmod.use(dbmod.open_database(str(path)))

    def worker(i: int) -> None:
        database.connect(reuse_if_open=True)
        mine = []
        for _ in range(per_thread):
            t = time.perf_counter()
            try:
                service.claim_next(f"agent-{i}")
            except QueueEmpty:
                break
            mine.append(time.perf_counter() - t)
        database.close()
        with lock:
            latencies.extend(mine)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "threads": threads,
        "claims": len(latencies),
        "per_second": len(latencies) / elapsed,
        **percentiles(latencies),
    }


def bench_reads(path: Path | str, repeats: int) -> dict:
    database = dbmod.use(dbmod.open_database(str(path)))
    database.connect(reuse_if_open=True)
    flt = ReportFilter(status=["open"], severity=["critical"])
    page_times, status_times = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        page = queries.list_reports(flt, sort="sla_due_at", limit=50)
        page_times.append(time.perf_counter() - t)
    for _ in range(5):
        t = time.perf_counter()
        queries.status_summary()
        status_times.append(time.perf_counter() - t)
    query = (
        queries.apply_filter(queries.BugReport.select(), flt)
        .order_by(queries.BugReport.sla_due_at, queries.BugReport.number)
        .limit(51)
    )
    sql, params = query.sql()
    explain = "EXPLAIN QUERY PLAN " if dbmod.is_sqlite(database) else "EXPLAIN "
    plan = [row[-1] for row in database.execute_sql(explain + sql, params).fetchall()]
    database.close()
    return {
        "first_page": percentiles(page_times),
        "page_items": len(page.items),
        "status_summary_ms": percentiles(status_times),
        "plan": plan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--creates", type=int, default=3000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--skip-reads", action="store_true", help="only the create figures")
    parser.add_argument("--postgres", default=None, help="run the 1M-row figures on this empty PostgreSQL database")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bugdesk-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine()}
    # Interleaved rounds, median of each: the machine is shared and drifts.
    raw, ours = [], []
    for _ in range(3 if args.creates else 0):
        for name in ("raw.db", "create.db"):
            for suffix in ("", "-wal", "-shm"):
                (work / f"{name}{suffix}").unlink(missing_ok=True)
        raw.append(bench_raw_reference(work / "raw.db", args.creates)["per_second"])
        ours.append(bench_create(work / "create.db", args.creates)["per_second"])
    if raw:
        results["raw_sqlite3_reference_per_second"] = {"median": statistics.median(raw), "rounds": raw}
        results["service_create_per_second"] = {"median": statistics.median(ours), "rounds": ours}
        results["create_ratio_vs_raw"] = statistics.median(o / r for o, r in zip(ours, raw, strict=True))
    big = args.postgres or str(work / "big.db")
    if args.skip_reads:
        print(json.dumps(results, indent=2))
        return
    if args.postgres or not Path(big).exists():
        results["seed_seconds"] = seed(big, args.rows)
    results["reads_at_rows"] = args.rows
    results["reads"] = bench_reads(big, 300)
    results["claim_next_8_threads"] = bench_claims(big, 8, 250)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
