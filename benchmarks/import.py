"""Legacy import, end to end: generate a store with the shared generator and import it into SQLite.

    uv run python benchmarks/import.py [--reports 1000000] [--store /tmp/legacy-1m] [--db /tmp/bench-import.db]
                                       [--jobs N] [--batch-size N] [--reference 100000] [--rerun]

The store is generated once (``generate.py OUT --reports N --seed 1 --jobs 2``, under /tmp,
reused when present). Measured in the same run:

* the reference: reading and mapping entries in this process without a database
  (``iter_entries`` + ``map_entry``), then the same plus building the rows
  (``sync.importer.prepare``: validation, fingerprint, row conversion), on the first
  ``--reference`` entries of the walk;
* the import itself: ``bugdesk sync import`` as a child process, wall time from start to
  exit, peak RSS of the importing process (``getrusage`` of the children) and of the whole
  process tree with its reader workers (sampled from /proc every 0.2 s);
* with ``--rerun``, the second run over the unchanged store (a no-op).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from _common import machine

GENERATOR = Path(__file__).resolve().parents[1].parent / "shared/legacy/generate.py"


def generate(store: Path, reports: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(GENERATOR), str(store), "--reports", str(reports), "--seed", "1", "--jobs", "2"],
        check=True,
    )
    return time.perf_counter() - started


def reference(root: Path, count: int) -> dict:
    """Entries per second for read+map, and for read+map+prepare, in one process without a database."""
    from bugdesk.config import Settings
    from sync.importer import prepare
    from sync.mapping import Record, map_entry
    from sync.reader import iter_entries

    for _ in itertools.islice(iter_entries(root), count):
        pass  # warm the page cache, so the timed passes read what the import will read
    started, cpu = time.perf_counter(), time.process_time()
    records = 0
    for entry in itertools.islice(iter_entries(root), count):
        records += isinstance(map_entry(entry), Record)
    read_map, read_map_cpu = time.perf_counter() - started, time.process_time() - cpu
    settings, now = Settings(), datetime.now(UTC)
    started, cpu = time.perf_counter(), time.process_time()
    for entry in itertools.islice(iter_entries(root), count):
        result = map_entry(entry)
        if isinstance(result, Record):
            prepare(result, settings, now=now)
    full, full_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "entries": count,
        "read_map_per_s": count / read_map,
        "read_map_cpu_us": read_map_cpu / count * 1e6,
        "read_map_prepare_per_s": count / full,
        "read_map_prepare_cpu_us": full_cpu / count * 1e6,
    }


def _tree(pid: int, cpu: dict[int, float]) -> int:
    """Resident bytes of ``pid`` and all its descendants; records each one's CPU seconds in ``cpu``.

    The reader processes are children of multiprocessing's fork server, which getrusage of
    this process does not see, so their CPU is read from /proc while they run.
    """
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[int, float]] = {}
    page, tick = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(name))
        stats[int(name)] = (int(fields[21]) * page, (int(fields[11]) + int(fields[12])) / tick)
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        rss, seconds = stats.get(current, (0, 0.0))
        total += rss
        cpu[current] = max(cpu.get(current, 0.0), seconds)
        stack.extend(children.get(current, []))
    return total


def run_import(db: Path, root: Path, jobs: int | None, batch_size: int) -> dict:
    command = [sys.executable, "-m", "bugdesk", "--db", f"sqlite:///{db}", "sync", "import", str(root)]
    command += ["--json", "--no-progress", "--batch-size", str(batch_size)]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_tree = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not done.is_set():
            peak_tree = max(peak_tree, _tree(child.pid, cpu))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode not in (0, 1):
        raise SystemExit(f"import failed ({child.returncode}):\n{err.decode()[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = json.loads(out)
    summary.pop("examples", None)
    return {
        "seconds": elapsed,
        # CPU of the importer (getrusage) and of the whole tree (/proc, sampled): the machine is
        # shared, so this says what the import costs, and wall time what it got.
        "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "cpu_seconds_tree": sum(cpu.values()),
        "exit_code": child.returncode,
        "peak_rss_main_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "peak_rss_tree_mb": peak_tree / 2**20,
        "summary": summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, default=None, help="default: /tmp/legacy-<reports>")
    parser.add_argument("--db", type=Path, default=Path("/tmp/bench-import.db"))
    parser.add_argument("--jobs", type=int, default=None, help="reader processes (default: the CLI's)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--reference", type=int, default=100_000, help="entries for the no-database reference")
    parser.add_argument("--rerun", action="store_true", help="also time a second, no-op run")
    args = parser.parse_args()
    store = args.store or Path(f"/tmp/legacy-{args.reports}")
    print(machine())
    if not (store / "MANIFEST.jsonl").is_file():
        print(f"generating {args.reports:,} reports into {store} ...", flush=True)
        print(f"generated in {generate(store, args.reports):.0f} s")
    root = store / "reports"
    ref = reference(root, args.reference)
    print(
        f"reference (one process, no database, first {ref['entries']:,} entries): "
        f"read+map {ref['read_map_per_s']:,.0f}/s ({ref['read_map_cpu_us']:.0f} us CPU each), "
        f"read+map+prepare {ref['read_map_prepare_per_s']:,.0f}/s ({ref['read_map_prepare_cpu_us']:.0f} us CPU each)"
    )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    result = run_import(args.db, root, args.jobs, args.batch_size)
    summary = result["summary"]
    reports = summary["imported"]
    entries = summary["entries_read"]
    print(
        f"import: {reports:,} reports ({entries:,} entries) in {result['seconds']:.0f} s = "
        f"{reports / result['seconds']:,.0f} reports/s ({entries / result['seconds']:,.0f} entries/s); "
        f"CPU {result['cpu_seconds_tree']:.0f} s = {result['cpu_seconds_tree'] / reports * 1e6:.0f} us/report "
        f"(writer {summary['cpu_seconds'] / reports * 1e6:.0f} us); "
        f"bulk mode {'on' if summary.get('bulk') else 'off'}, "
        f"building indexes {summary.get('index_seconds', 0):.1f} s; "
        f"peak RSS {result['peak_rss_main_mb']:.0f} MB (importing process), "
        f"{result['peak_rss_tree_mb']:.0f} MB (with its readers); "
        f"database {args.db.stat().st_size / 2**30:.2f} GiB"
    )
    print(json.dumps({"reference": ref, "import": result}, indent=2, default=str))
    if args.rerun:
        again = run_import(args.db, root, args.jobs, args.batch_size)
        print(f"re-run (nothing changed): {again['seconds']:.1f} s, {again['summary']['imported']} imported")


if __name__ == "__main__":
    main()
