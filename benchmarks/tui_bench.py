"""Human views at 1M reports: dashboard first paint, filter/search latency, cursor movement, `bugdesk status`.

    uv run python benchmarks/tui_bench.py [--rows 1000000] [--workdir DIR] [--repeats 5]

The database is seeded with ``service_bench.seed`` (plain executemany; building it is not
what is measured). The dashboard runs headless under Textual's Pilot at 120x40 with the
real clock and live refresh off; each figure is wall time from the key press (or from
starting the app) until the new rows are on the screen. `bugdesk status` is timed as a
whole command in a fresh process, start-up included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, percentiles
from service_bench import seed

from bugdesk.config import Settings
from bugdesk.tui.app import BugdeskApp, make_app
from bugdesk.tui.screens import DetailScreen, MainScreen
from bugdesk.tui.store import ListQuery
from bugdesk.tui.widgets import ReportList


async def _until(pilot, condition, timeout: float = 30.0) -> float:
    """Seconds until ``condition()`` holds, checking after every message-loop turn."""
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the dashboard did not get there in time")
        await asyncio.sleep(0.001)
    return time.perf_counter() - start


class LagMonitor:
    """Measures the longest gap between event-loop turns (how long the UI was unresponsive)."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.001)
            last = now

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        return self.worst * 1000


async def first_paint(settings: Settings) -> dict:
    """From starting the app until the header counts and the first rows are drawn."""
    app = make_app(settings, poll_seconds=0)
    start = time.perf_counter()
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, MainScreen) and bool(app.screen.table.rows_shown))
        rows_at = time.perf_counter() - start
        await _until(pilot, lambda: app.summary is not None)
        counts_at = time.perf_counter() - start
        await pilot.pause()
    return {"rows_s": rows_at, "rows_and_counts_s": max(rows_at, counts_at)}


async def interactions(settings: Settings) -> dict:
    """Filters, search, sort, cursor movement and opening a report, in one running dashboard."""
    app: BugdeskApp = make_app(settings, poll_seconds=0)
    out: dict = {}
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, MainScreen) and bool(app.screen.table.rows_shown))
        screen: MainScreen = app.screen  # type: ignore[assignment]
        table = screen.query_one(ReportList)

        async def apply(label: str, query: ListQuery) -> None:
            start = time.perf_counter()
            screen.set_query(query)
            generation = screen.generation
            await _until(pilot, lambda: screen.generation == generation and not screen.loading)
            await pilot.pause()  # the table repainted
            out[label] = {"ms": (time.perf_counter() - start) * 1000, "rows": len(table.rows_shown)}

        base = ListQuery()
        await apply("filter severity=critical (open)", ListQuery(severity="critical"))
        await apply("filter breached (open)", ListQuery(breached=True))
        await apply("filter category=crash (open)", ListQuery(category="crash"))
        await apply("filter assignee=alice (open)", ListQuery(assignee="alice"))
        await apply("filter status=new", ListQuery(status="new"))
        await apply("status=all, newest first", ListQuery(status="all", sort="-created_at"))
        await apply("search 'report 99999' (open)", ListQuery(search="report 99999"))
        await apply("search 'report 4242' (all statuses)", ListQuery(status="all", search="report 4242",
                                                                     sort="-created_at"))  # fmt: skip
        await apply("sort newest (open)", ListQuery(sort="-created_at"))
        await apply("back to open by SLA", base)

        # The search box end to end: Enter in the box until the rows are shown.
        await pilot.press("slash", *"report 99999")
        generation = screen.generation
        start = time.perf_counter()
        await pilot.press("enter")
        await _until(pilot, lambda: screen.generation > generation and not screen.loading)
        await pilot.pause()
        out["search box 'report 99999' (open, Enter to rows)"] = {
            "ms": (time.perf_counter() - start) * 1000,
            "rows": len(table.rows_shown),
        }
        await apply("reset", base)

        # Cursor movement. Each Pilot press waits until the app is idle again, so its time includes
        # Pilot's own overhead (measured with a key nothing is bound to). The event-loop lag monitor
        # is the stall figure: the longest the UI could not react to anything while moving.
        idle = []
        for _ in range(50):
            start = time.perf_counter()
            await pilot.press("x")
            idle.append(time.perf_counter() - start)
        out["pilot press, unbound key (overhead baseline)"] = percentiles(idle)
        for label, key, count in (("cursor down x400", "down", 400), ("page down x40 (pages load on the way)",
                                                                     "pagedown", 40)):  # fmt: skip
            lag = LagMonitor()
            lag.start()
            steps = []
            for _ in range(count):
                start = time.perf_counter()
                await pilot.press(key)
                steps.append(time.perf_counter() - start)
            out[label] = {
                **percentiles(steps),
                "max": max(steps) * 1000,
                "event_loop_lag_max_ms": await lag.stop(),
                "rows_loaded": len(table.rows_shown),
            }

        start = time.perf_counter()
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, DetailScreen) and app.screen.detail is not None)
        await pilot.pause()
        out["open a report (Enter to detail drawn)"] = {"ms": (time.perf_counter() - start) * 1000}
    return out


_COLD_START = """
import asyncio, sys, time
import bugdesk.cli  # what `bugdesk tui` imports before it starts the app
from bugdesk.config import Settings
from bugdesk.tui.app import make_app
from bugdesk.tui.screens import MainScreen

async def until_rows(pilot):
    app = pilot.app
    while not (isinstance(app.screen, MainScreen) and app.screen.table.rows_shown and app.summary):
        await asyncio.sleep(0.001)
    await pilot.pause()
    print("painted", flush=True)
    app.exit()

make_app(Settings(database_url=sys.argv[1]), poll_seconds=0).run(headless=True, size=(120, 40), auto_pilot=until_rows)
"""


def cold_start(path: Path, repeats: int) -> dict:
    """A fresh process, as `bugdesk tui` starts: imports, app start-up, first rows and counts drawn."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _COLD_START, f"sqlite:///{path}"], stdout=subprocess.PIPE,
                                text=True)  # fmt: skip
        assert proc.stdout is not None
        line = proc.stdout.readline()
        times.append(time.perf_counter() - start)
        proc.wait()
        assert line.strip() == "painted", line
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000}


def status_command(path: Path, repeats: int) -> dict:
    """`bugdesk status` as a whole command, start-up included (median of ``repeats``)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bugdesk", "--db", str(path), "status"], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        times.append(time.perf_counter() - start)
    importing = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import bugdesk.cli"], check=True)
        importing.append(time.perf_counter() - start)
    return {
        "median_ms": statistics.median(times) * 1000,
        "min_ms": min(times) * 1000,
        "import_bugdesk_cli_median_ms": statistics.median(importing) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bugdesk-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"tui-{args.rows}.db"
    results: dict = {"machine": machine(), "rows": args.rows}
    if not path.exists():
        results["seed_seconds"] = seed(path, args.rows)
    settings = Settings(database_url=f"sqlite:///{path}")
    paints = [asyncio.run(first_paint(settings)) for _ in range(args.repeats)]
    results["first_paint_ms"] = {
        "rows_median": statistics.median(p["rows_s"] for p in paints) * 1000,
        "rows_and_counts_median": statistics.median(p["rows_and_counts_s"] for p in paints) * 1000,
        "rows_and_counts_max": max(p["rows_and_counts_s"] for p in paints) * 1000,
    }
    results["first_paint_cold_process_ms"] = cold_start(path, args.repeats)
    results["interactions"] = asyncio.run(interactions(settings))
    results["bugdesk_status"] = status_command(path, args.repeats)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
