"""Analyst figures (issue 8): every canned query and the faceted table pages through Datasette, at 1M reports.

    uv run python benchmarks/datasette_bench.py [--rows 1000000] [--workdir DIR] [--repeats 7] [--export]
                                                [--export-from postgresql://...]

The database is seeded with plain ``executemany`` (building the data set is not
what is measured) at the schema before 0003, analysed, and then brought up to
date by ``bugdesk db upgrade``'s code path, which times migration 0003 (FTS
build and analyst indexes) on a million rows. Every figure after that is a
request through Datasette's own ASGI client (``Datasette.client``: routing,
permission checks, SQL, JSON or HTML rendering; no sockets), built by
``bugdesk.analyst.serve.build_datasette`` exactly as ``bugdesk datasette`` builds
it. Each request runs once to warm the page cache, then ``--repeats`` times;
p50 and max are reported. Before each timed request a plain sqlite3 group-by of
1M index entries runs as the same-run reference (~40 ms on an idle machine).

``--export`` times ``bugdesk export sqlite`` of the whole database
(``--export-from URL`` of another, e.g. PostgreSQL), and ``--creates N`` times
the service layer's create path on fresh databases before and after 0003, in
interleaved rounds, to show what the FTS triggers and the analyst indexes cost
writers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import machine, make_bug, realistic_report, traceback_text
from playhouse.migrations import Runner

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.analyst import serve
from bugdesk.config import Settings

FMT = "%Y-%m-%d %H:%M:%S.%f"
CATEGORIES = (["crash"] * 8) + (["data"] * 3) + (["ui"] * 3) + (["performance"] * 2) + ["security", "other", "other"]
SEVERITIES = ["critical", "high", "medium", "low"]
AGENTS = [f"agent-{i:02d}" for i in range(1, 13)]
HUMANS = ["alice", "bob", "carol"]
OPEN_STATUSES = ["new", "triaged", "in_progress", "awaiting_verification"]
# Mean hours to resolve, by severity.
RESOLVE_HOURS = {"critical": 6, "high": 48, "medium": 170, "low": 480}
BATCH = 20_000


def ts(value: datetime) -> str:
    return value.strftime(FMT)


class Seeder:
    """Builds a realistic bugdesk history: reports, events, dedup groups, agent runs and releases."""

    def __init__(self, conn: sqlite3.Connection, rows: int, now: datetime) -> None:
        self.conn = conn
        self.rows = rows
        self.now = now
        self.rng = random.Random(8)
        self.sla = Settings().sla_hours
        self.start = now - timedelta(days=3 * 365)
        self.reports: list[tuple] = []
        self.events: list[tuple] = []
        self.runs: list[tuple] = []
        self.dedup: dict[int, list] = {}  # bug id -> [canonical id, fingerprint, occurrences, first, last]
        self.releases: list[tuple[datetime, str, str, str]] = []
        self.sample: dict[str, str] = {}

    def seed(self) -> None:
        self._releases()
        span = (self.now - self.start).total_seconds()
        for i in range(1, self.rows + 1):
            created = self.start + timedelta(seconds=span * i / self.rows)
            self._report(i, created)
            if len(self.reports) >= BATCH:
                self._flush()
        self._flush()
        self._flush_dedup()

    def _releases(self) -> None:
        day = self.start
        n = 0
        while day < self.now:
            n += 1
            for env in ("production", "staging"):
                sha = f"{self.rng.getrandbits(160):040x}"
                # Staging gets each release a few hours before production.
                at = day + timedelta(hours=self.rng.uniform(6, 20) - (6 if env == "staging" else 0))
                version = f"{day:%Y.%m}.{n}"
                self.releases.append((at, sha, env, version))
                self.conn.execute(
                    "INSERT INTO releases (sha, version, environment, deployed_at) VALUES (?, ?, ?, ?)",
                    (sha, version, env, ts(at)),
                )
            day += timedelta(days=2)
        self.prod = [(at, sha) for at, sha, env, _ in self.releases if env == "production"]
        self.sample["release_version"] = next(
            v for at, _, env, v in reversed(self.releases) if env == "production" and at < self.now - timedelta(days=40)
        )

    def _release_at(self, when: datetime) -> str | None:
        lo, hi = 0, len(self.prod) - 1
        if when < self.prod[0][0]:
            return None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.prod[mid][0] <= when:
                lo = mid
            else:
                hi = mid - 1
        return self.prod[lo][1]

    def _report(self, number: int, created: datetime) -> None:
        rng = self.rng
        # 45% of reports are occurrences of a popular bug (Zipf-like over 5,000),
        # the rest a bug of their own: ~550k canonical reports and dedup rows.
        popular = rng.random() < 0.45
        bug_id = int(5000 * rng.random() ** 3) if popular else 10_000 + number
        bug = make_bug(rng, bug_id)
        rid = str(uuid.uuid4())
        severity = rng.choices(SEVERITIES, [5, 20, 50, 25])[0]
        category = rng.choice(CATEGORIES)
        release = self._release_at(created) if rng.random() < 0.9 else None
        trace = f"{rng.getrandbits(128):032x}" if rng.random() < 0.7 else None
        if trace and number % 1000 == 0:
            self.sample["trace_id"] = trace
        group = self.dedup.get(bug_id)
        duplicate_of = None
        if group is not None:
            duplicate_of = group[0]
            group[2] += 1
            group[4] = created
            status = "new"
            resolved = None
            close_reason = None
            if rng.random() < 0.3:
                self._event(group[0], "occurrence", "system", created, data={"report": number})
        else:
            status, resolved, close_reason = self._fate(created, severity)
            self.dedup[bug_id] = [rid, f"{rng.getrandbits(256):064x}", 1, created, created]
        if number == self.rows // 2:
            # One report with a word no other stack trace has: the rare-word search.
            bug = {**bug, "frames": [*bug["frames"], (f"app/{bug['component']}/ledger.py", "reconcile_quokka")]}
            self.sample["search_rare"] = "quokka"
        stack = traceback_text(bug, rng)
        title = f"{bug['exc']} in {bug['frames'][-1][1]}()"
        claimed_by = None
        if status == "in_progress":
            claimed_by = rng.choice(AGENTS)
        self.reports.append((
            rid, number, title, "Reported by the nightly job. " * rng.randint(1, 3), severity, category, status,
            close_reason, bug["component"], bug["route"], "production", bug["exc"], stack, trace,
            f"req_{rng.getrandbits(64):016x}", release, duplicate_of, claimed_by, ts(created), ts(resolved or created),
            ts(resolved) if resolved else None, ts(created + timedelta(hours=self.sla[severity])),
        ))  # fmt: skip
        self._event(rid, "created", "ingest", created, to_status="new")
        if duplicate_of is None:
            self._history(rid, number, created, status, resolved, release)

    def _fate(self, created: datetime, severity: str) -> tuple[str, datetime | None, str | None]:
        rng = self.rng
        age_days = (self.now - created).total_seconds() / 86400
        open_share = 0.5 if age_days < 60 else 0.05
        roll = rng.random()
        if roll < open_share:
            return rng.choice(OPEN_STATUSES), None, None
        resolved = created + timedelta(hours=rng.expovariate(1 / RESOLVE_HOURS[severity]))
        if resolved >= self.now:
            return "in_progress", None, None
        if roll < open_share + 0.15:
            return "closed", None, "wont_fix"
        return "resolved", resolved, None

    def _history(self, rid: str, number: int, created: datetime, status: str, resolved, release) -> None:
        rng = self.rng
        at = created + timedelta(minutes=rng.uniform(5, 120))
        if rng.random() < 0.5:
            self._event(rid, "triaged", rng.choice(HUMANS), at, from_status="new", to_status="triaged")
        if status in ("in_progress", "resolved") and rng.random() < 0.75:
            agent = rng.choice(AGENTS)
            if rng.random() < 0.1:  # a first lease that ran out
                self._event(rid, "claimed", agent, at, to_status="in_progress")
                self._event(rid, "lease_expired", "system", at + timedelta(minutes=10), data={"agent": agent})
                agent = rng.choice(AGENTS)
                at += timedelta(minutes=11)
            self._event(rid, "claimed", agent, at, to_status="in_progress")
            end = resolved or self.now
            outcome = "succeeded" if resolved else "running"
            self.runs.append((str(uuid.uuid4()), rid, agent, ts(at), ts(end) if resolved else None, outcome))
            actor = agent
        else:
            actor = rng.choice(HUMANS)
        if resolved is not None:
            self._event(rid, "resolved", actor, resolved, from_status="in_progress", to_status="resolved")
            if rng.random() < 0.01:
                back = resolved + timedelta(days=rng.uniform(1, 30))
                if back < self.now:
                    fix = self._release_at(resolved)
                    data = {"report": number, "release_sha": self._release_at(back), "fix_release": fix}
                    self._event(rid, "regressed", "system", back, "resolved", "triaged", data=data)

    def _event(self, rid, kind, actor, at, from_status=None, to_status=None, data=None) -> None:
        self.events.append((rid, kind, actor, from_status, to_status, json.dumps(data) if data else None, ts(at)))

    def _flush(self) -> None:
        c = self.conn
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO bug_reports (id, number, title, description, severity, category, status, close_reason, "
            "component, route, environment, exception_type, stacktrace, trace_id, request_id, release_sha, "
            "duplicate_of_id, claimed_by, source, needs_human, version, created_at, updated_at, resolved_at, "
            "sla_due_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'user',0,1,?,?,?,?)",
            self.reports,
        )
        self.events.sort(key=lambda e: e[-1])
        c.executemany(
            "INSERT INTO bug_report_events (report_id, kind, actor, from_status, to_status, data, created_at) "
            "VALUES (?,?,?,?,?,?,?)",
            self.events,
        )
        c.executemany(
            "INSERT INTO agent_runs (id, report_id, agent, started_at, finished_at, outcome) VALUES (?,?,?,?,?,?)",
            self.runs,
        )
        c.execute("COMMIT")
        self.reports.clear()
        self.events.clear()
        self.runs.clear()

    def _flush_dedup(self) -> None:
        c = self.conn
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO bug_report_dedup (fingerprint, canonical_id, algorithm, kind, signature, occurrences, "
            "first_seen_at, last_seen_at) VALUES (?, ?, 'v1', 'stack', 'seeded', ?, ?, ?)",
            ((fp, rid, n, ts(first), ts(last)) for rid, fp, n, first, last in self.dedup.values()),
        )
        c.execute("COMMIT")


def migrate_before_0003(path: Path) -> None:
    database = dbmod.open_database(str(path))
    database.connect()
    runner = Runner(database, str(dbmod.schema_dir()), table_name=dbmod.MIGRATION_TABLE)
    names = [m.name for m in runner.status()]
    runner.up(target=names[names.index("0003_fts") - 1])
    database.close()


def seed(path: Path, rows: int, now: datetime) -> dict:
    migrate_before_0003(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=off")
    t = time.perf_counter()
    seeder = Seeder(conn, rows, now)
    seeder.seed()
    seeded = time.perf_counter() - t
    t = time.perf_counter()
    conn.execute("ANALYZE")
    conn.close()
    analysed = time.perf_counter() - t
    database = dbmod.open_database(str(path))
    database.connect()
    t = time.perf_counter()
    applied = dbmod.upgrade(database)
    migrated = time.perf_counter() - t
    counts = {
        table: database.execute_sql(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("bug_reports", "bug_report_events", "bug_report_dedup", "agent_runs", "releases")
    }
    open_canonical = database.execute_sql(
        "SELECT count(*) FROM bug_reports WHERE status NOT IN ('resolved', 'closed') AND duplicate_of_id IS NULL"
    ).fetchone()[0]
    database.close()
    (path.parent / "sample.json").write_text(json.dumps(seeder.sample))
    return {
        "seed_seconds": round(seeded, 1),
        "analyze_seconds": round(analysed, 1),
        "migration_0003_seconds": round(migrated, 1),
        "applied": applied,
        "counts": counts,
        "open_canonical": open_canonical,
        "file_mb": round(path.stat().st_size / 1e6),
    }


def requests(sample: dict) -> dict[str, str]:
    """Every canned query with its natural parameters, and the table pages."""
    return {
        "open_by_severity_category": "/bugdesk/open_by_severity_category.json?_shape=array",
        "sla_breaches": "/bugdesk/sla_breaches.json?_shape=array",
        "sla_breaches (critical)": "/bugdesk/sla_breaches.json?_shape=array&severity=critical",
        "oldest_open": "/bugdesk/oldest_open.json?_shape=array",
        "top_duplicate_clusters": "/bugdesk/top_duplicate_clusters.json?_shape=array",
        "time_to_resolve (12 weeks)": "/bugdesk/time_to_resolve.json?_shape=array",
        "agent_throughput (30 days)": "/bugdesk/agent_throughput.json?_shape=array",
        "regressions_by_release": "/bugdesk/regressions_by_release.json?_shape=array",
        "reports_by_release (version)": "/bugdesk/reports_by_release.json?_shape=array&release="
        + sample["release_version"],
        "trace": f"/bugdesk/trace.json?_shape=array&trace_id={sample['trace_id']}",
        "recent_events (24 h)": "/bugdesk/recent_events.json?_shape=array",
        "recent_events (-7 days, kind=claimed)": "/bugdesk/recent_events.json?_shape=array&since=-7+days&kind=claimed",
        "table page: bug_reports (HTML, 50 rows, 4 default facets)": "/bugdesk/bug_reports",
        "table page: bug_reports.json (4 default facets)": "/bugdesk/bug_reports.json",
        "table page: bug_reports.json?status=new (4 facets of 450k rows)": "/bugdesk/bug_reports.json?status=new",
        "table page: bug_report_events.json?_facet=kind (2.2M rows)": "/bugdesk/bug_report_events.json?_facet=kind",
        "table page: agent_runs (HTML, facet outcome)": "/bugdesk/agent_runs",
        "table page: bug_report_dedup (HTML, by last seen)": "/bugdesk/bug_report_dedup",
        "search: _search=<rare frame function>": f"/bugdesk/bug_reports.json?_search={sample['search_rare']}",
        "search: _search=KeyError (common)": "/bugdesk/bug_reports.json?_search=KeyError",
    }


# The same-run reference: plain sqlite3 counting 1M index entries by value, the
# unit of work of one facet. On an idle machine it takes ~40 ms; on a shared
# one it says how much of a core the figures beside it had.
REFERENCE_SQL = "SELECT severity, count(*) FROM bug_reports GROUP BY severity"


def bench_datasette(path: Path, repeats: int) -> dict:
    sample = json.loads((path.parent / "sample.json").read_text())
    ds = serve.build_datasette(path)
    loop = asyncio.new_event_loop()
    reference_conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    reference: list[float] = []
    results: dict = {}
    for name, url in requests(sample).items():
        first = loop.run_until_complete(ds.client.get(url))
        if first.status_code != 200:
            results[name] = {"error": f"HTTP {first.status_code}: {first.text[:200]}"}
            continue
        timings = []
        for _ in range(repeats):
            t = time.perf_counter()
            reference_conn.execute(REFERENCE_SQL).fetchall()
            reference.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            response = loop.run_until_complete(ds.client.get(url))
            timings.append((time.perf_counter() - t) * 1000)
        body = response.json() if url.split("?")[0].endswith(".json") else None
        rows = len(body) if isinstance(body, list) else len(body.get("rows", [])) if isinstance(body, dict) else None
        results[name] = {"p50_ms": round(statistics.median(timings), 1), "max_ms": round(max(timings), 1), "rows": rows}
        if isinstance(body, dict) and body.get("facets_timed_out"):
            results[name]["facets_timed_out"] = body["facets_timed_out"]
    loop.close()
    reference_conn.close()
    results["reference: plain sqlite3 group-by of 1M index entries"] = {
        "p50_ms": round(statistics.median(reference), 1),
        "max_ms": round(max(reference), 1),
    }
    return results


def bench_create_before_and_after_0003(work: Path, count: int, rounds: int = 3) -> dict:
    """Service-layer creates into fresh databases before 0003 (the reference) and at 0003, rounds interleaved."""
    rng = random.Random(3)
    payloads = [realistic_report(rng) for _ in range(count)]
    rates: dict[str, list[int]] = {"before_0003": [], "with_0003": []}
    for i in range(rounds):
        for label in rates:
            path = work / f"create-{label}-{i}.db"
            path.unlink(missing_ok=True)
            migrate_before_0003(path)
            with dbmod.connected(str(path), check_schema=False) as database:
                if label == "with_0003":
                    dbmod.upgrade(database)
                # CPU time of this process: the loop is single-threaded and never
                # waits on fsync (WAL, synchronous=NORMAL), and other tenants of a
                # shared machine stretch wall time, not CPU time.
                t = time.process_time()
                for payload in payloads:
                    service.create_report(payload, "bench")
                rates[label].append(round(count / (time.process_time() - t)))
            path.unlink()
    before, after = statistics.median(rates["before_0003"]), statistics.median(rates["with_0003"])
    return {"rounds": rates, "median_before": before, "median_with": after, "ratio": round(after / before, 2)}


def bench_export(source: str, out: Path) -> dict:
    from bugdesk.analyst.export import export_sqlite

    result = export_sqlite(source, out, force=True)
    size = out.stat().st_size
    out.unlink()
    rows = sum(result.counts.values())
    return {
        "seconds": round(result.seconds, 1),
        "rows_per_second": round(rows / result.seconds),
        "rows": result.counts,
        "file_mb": round(size / 1e6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--creates", type=int, default=2000, help="reports per create round (0: skip)")
    parser.add_argument("--export", action="store_true", help="time `bugdesk export sqlite` of the 1M database")
    parser.add_argument("--export-from", metavar="URL", help="also time an export from this database (PostgreSQL)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bugdesk-ds-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "rows": args.rows}
    big = work / f"analyst-{args.rows}.db"
    if not big.exists():
        results["seed"] = seed(big, args.rows, datetime.now(UTC))
    results["datasette"] = bench_datasette(big, args.repeats)
    if args.creates:
        results["create_per_second"] = bench_create_before_and_after_0003(work, args.creates)
    if args.export:
        results["export_sqlite"] = bench_export(str(big), work / "snapshot.db")
    if args.export_from:
        results["export_from"] = bench_export(args.export_from, work / "snapshot-from-url.db")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
