"""Shared helpers for the benchmark scripts: timing, percentiles, machine facts, realistic reports."""

from __future__ import annotations

import os
import platform
import random
import sqlite3
import statistics
import time
from collections.abc import Callable

COMPONENTS = [
    "billing",
    "search",
    "auth",
    "uploads",
    "inventory",
    "notifications",
    "reports",
    "profile",
    "checkout",
    "admin",
    "gateway",
    "scheduler",
]
EXCEPTIONS = [
    ("KeyError", "'{}'"),
    ("ValueError", "invalid literal for int() with base 10: '{}'"),
    ("TypeError", "'NoneType' object is not subscriptable"),
    ("AttributeError", "'dict' object has no attribute '{}'"),
    ("IntegrityError", 'duplicate key value violates unique constraint "{}_pkey"'),
    ("TimeoutError", "timed out after {} ms"),
]
FUNCS = [
    "handle",
    "process",
    "load",
    "save",
    "validate",
    "render",
    "charge",
    "sync",
    "parse_row",
    "dispatch",
    "refresh",
    "compute_total",
    "apply_coupon",
    "lookup",
    "notify",
]


def machine() -> str:
    return (
        f"{platform.node() or 'host'}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.platform()}"
    )


def percentiles(samples_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "mean": statistics.fmean(ordered) * 1000}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_bug(rng: random.Random, bug_id: int) -> dict:
    """A deterministic bug identity: component, exception and an in-app call path."""
    r = random.Random(bug_id)
    component = r.choice(COMPONENTS)
    exc, msg = r.choice(EXCEPTIONS)
    frames = [
        (f"app/{component}/{r.choice(['views', 'tasks', 'models', 'service'])}.py", r.choice(FUNCS))
        for _ in range(r.randint(3, 7))
    ]
    return {"component": component, "exc": exc, "msg": msg, "frames": frames, "route": f"/api/{component}/<int:id>"}


def traceback_text(bug: dict, rng: random.Random) -> str:
    lines = ["Traceback (most recent call last):"]
    prefix = rng.choice(["/srv/app/releases/" + f"{rng.getrandbits(160):040x}" + "/", "/app/", "/home/dev/src/"])
    lines.append('  File "/usr/lib/python3.11/site-packages/flask/app.py", line 1484, in full_dispatch_request')
    lines.append("    rv = self.dispatch_request()")
    for path, func in bug["frames"]:
        lines.append(f'  File "{prefix}{path}", line {rng.randint(10, 900)}, in {func}')
        lines.append(f"    result = {func}(payload)")
    lines.append(f"{bug['exc']}: {bug['msg'].format(rng.randint(1, 10**6))}")
    return "\n".join(lines)


def realistic_report(rng: random.Random, n_bugs: int = 200) -> dict:
    bug = make_bug(rng, rng.randrange(n_bugs))
    return {
        "title": f"{bug['exc']} in {bug['frames'][-1][1]}()",
        "description": "Reported by the nightly job. " * rng.randint(1, 8),
        "severity": rng.choices(["critical", "high", "medium", "low"], [5, 20, 50, 25])[0],
        "category": "crash",
        "component": bug["component"],
        "route": bug["route"].replace("<int:id>", str(rng.randint(1, 10**5))),
        "stacktrace": traceback_text(bug, rng),
        "trace_id": f"{rng.getrandbits(128):032x}",
        "request_id": f"req_{rng.getrandbits(64):016x}",
        "environment": "production",
    }
