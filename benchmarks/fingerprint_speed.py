"""Fingerprints per second on one core for realistic Python traceback texts.

Usage: uv run python benchmarks/fingerprint_speed.py [--n 2000] [--repeats 7] [--seed 1]

Builds N tracebacks as Python 3.11/3.12 prints them (10-40 frames: framework, in-app and
library frames under assorted deploy prefixes, source and caret lines, a third of them
chained, some with a log line in front), then times `compute(Signal(stacktrace=text))` over
all of them: one warm-up pass, then REPEATS timed passes; prints the median. Target: >= 20,000
tracebacks/s. Also times parsing alone and `compute` on structured frames (the gen-2 shape).
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import random
import statistics
import sys
import time

from bugdesk.fingerprint import Signal, compute, frames_from_list, parse_traceback

# (application root, site-packages, stdlib) per kind of host
HOSTS = [
    (
        "/srv/{app}/releases/{sha}",
        "/srv/{app}/venv/lib/python{py}/site-packages",
        "/usr/lib/python{py}",
    ),
    ("/app", "/usr/local/lib/python{py}/site-packages", "/usr/local/lib/python{py}"),
    ("/opt/{app}/current", "/opt/{app}/env/lib/python{py}/site-packages", "/usr/lib/python{py}"),
    (
        "/home/{user}/src/{app}",
        "/home/{user}/src/{app}/.venv/lib/python{py}/site-packages",
        "/home/{user}/.pyenv/versions/{py}.4/lib/python{py}",
    ),
]
PACKAGES = ["orders", "accounts", "catalog", "shipping", "ledger", "mailer", "search", "media"]
MODULES = ["views", "service", "models", "tasks", "utils", "handlers", "forms", "api", "client"]
FUNCS = ["handle", "process", "load", "save", "validate", "render", "dispatch", "compute", "fetch"]
LIBS = [
    ("flask/app.py", "wsgi_app"),
    ("flask/app.py", "full_dispatch_request"),
    ("django/core/handlers/base.py", "_get_response"),
    ("celery/app/trace.py", "trace_task"),
    ("sqlalchemy/engine/base.py", "_execute_context"),
    ("sqlalchemy/orm/session.py", "commit"),
    ("requests/sessions.py", "request"),
    ("requests/adapters.py", "send"),
    ("urllib3/connectionpool.py", "urlopen"),
    ("redis/client.py", "execute_command"),
]
STDLIB_FRAMES = [("json/decoder.py", "raw_decode"), ("socket.py", "create_connection")]
EXCEPTIONS = [
    ("KeyError", "'customer_id'"),
    ("AttributeError", "'NoneType' object has no attribute 'email'"),
    ("ValueError", "invalid literal for int() with base 10: 'abc'"),
    ("sqlalchemy.exc.IntegrityError", "(psycopg2.errors.UniqueViolation) duplicate key value"),
    (
        "requests.exceptions.ConnectionError",
        "HTTPSConnectionPool(host='api.example.com', port=443)",
    ),
    ("TypeError", "unsupported operand type(s) for +: 'int' and 'NoneType'"),
]


def make_traceback(rng: random.Random) -> str:
    """One realistic traceback text with 10-40 frames."""
    app, user = rng.choice(["shop", "portal", "crm"]), rng.choice(["ana", "li", "tom"])
    py = rng.choice(["3.11", "3.12"])
    sha = f"{rng.getrandbits(160):040x}"
    root, site, std = (x.format(app=app, sha=sha, user=user, py=py) for x in rng.choice(HOSTS))
    n = rng.randint(10, 40)
    chained = rng.random() < 0.33
    carets = rng.random() < 0.6

    def frame(path: str, func: str) -> list[str]:
        code = f"result = {func}(request, *args, **kwargs)"
        out = [f'  File "{path}", line {rng.randint(1, 2500)}, in {func}', f"    {code}"]
        if carets:
            out.append("             " + "^" * (len(code) - 9))
        return out

    def lib_frame() -> list[str]:
        if rng.random() < 0.2:
            rel, fn = rng.choice(STDLIB_FRAMES)
            return frame(f"{std}/{rel}", fn)
        rel, fn = rng.choice(LIBS)
        return frame(f"{site}/{rel}", fn)

    def block(frames: int, exc: str, msg: str, app_frames: bool = True) -> list[str]:
        # framework entry frames on top, application frames (with the odd decorator or
        # library call between them), then the library code that raised
        lines = ["Traceback (most recent call last):"]
        top = rng.randint(2, 6) if app_frames else 0
        bottom = rng.randint(0, 8) if app_frames else frames
        for _ in range(top):
            lines += lib_frame()
        for _ in range(max(0, frames - top - bottom)):
            if rng.random() < 0.15:
                lines += lib_frame()
            else:
                pkg, mod = rng.choice(PACKAGES), rng.choice(MODULES)
                lines += frame(f"{root}/{app}/{pkg}/{mod}.py", rng.choice(FUNCS))
        for _ in range(bottom):
            lines += lib_frame()
        lines.append(f"{exc}: {msg}")
        return lines

    exc, msg = rng.choice(EXCEPTIONS)
    lines = []
    if rng.random() < 0.3:
        lines.append(f"[2025-03-01 10:22:01,123] ERROR in {app}: Exception on /api/orders/42 [POST]")
    if chained:
        cause = max(3, n // 4)
        lines += block(cause, "ConnectionRefusedError", "[Errno 111] Connection refused", False)
        lines += ["", "The above exception was the direct cause of the following exception:", ""]
        n -= cause
    lines += block(n, exc, msg)
    return "\n".join(lines)


def rate(fn, items, repeats: int) -> float:
    """Median items per second over `repeats` timed passes (after one warm-up pass)."""
    for it in items:
        fn(it)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for it in items:
            fn(it)
        times.append(time.perf_counter() - t0)
    return len(items) / statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="distinct tracebacks (default 2000)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    texts = [make_traceback(rng) for _ in range(args.n)]
    signals = [Signal(stacktrace=t) for t in texts]
    structured = []
    for t in texts:
        last = parse_traceback(t).last
        items = [{"file": f.filename, "line": f.lineno, "function": f.function} for f in last.frames]
        structured.append(Signal(frames=frames_from_list(items), exception_type=last.type))
    frames = sum(t.count('File "') for t in texts) / len(texts)
    chars = sum(len(t) for t in texts) / len(texts)
    print(f"Python {platform.python_version()} on {platform.machine()}, one core")
    print(f"{args.n} tracebacks, {frames:.1f} frames and {chars:,.0f} characters on average")
    target = 20_000
    # a same-run reference, since absolute figures move on shared machines: the cheapest
    # conceivable "fingerprint", sha256 of the raw text
    ref = rate(lambda t: hashlib.sha256(t.encode()).hexdigest(), texts, args.repeats)
    r = rate(compute, signals, args.repeats)
    print(f"reference sha256(text)     {ref:>10,.0f} /s")
    print(f"compute(stacktrace text)   {r:>10,.0f} /s   ({r / ref:.2f} x reference; target >= {target:,})")
    print(f"parse_traceback alone      {rate(parse_traceback, texts, args.repeats):>10,.0f} /s")
    print(f"compute(structured frames) {rate(compute, structured, args.repeats):>10,.0f} /s")
    return 0 if r >= target else 1


if __name__ == "__main__":
    sys.exit(main())
