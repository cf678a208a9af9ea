"""Fuzz campaign: the hostile-input corpus plus a long Hypothesis fuzz of every endpoint against `bugdesk serve`.

    uv run python benchmarks/fuzz_campaign.py [--examples 20000] [--max-seconds 600] [--markdown FILE]

The server is a real `bugdesk serve` subprocess over a SQLite file; this process opens the same file to seed
reports and to snapshot row counts. Every case must answer below 500; every refusal must be a problem with a
detail that left the database as it was; the server must still answer /api/health at the end. The corpus and
the strategies are the tests' (tests/reliability/corpus.py and fuzz.py), so a failure here reproduces there.
"""

# ruff: noqa: E402  (the tests' helpers are imported after their directories join sys.path)

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "reliability"))
sys.path.insert(0, str(ROOT / "tests" / "api"))

import httpx
from _common import machine
from apilive import TOKENS, LiveServer, free_port, server_process
from corpus import all_cases, run_case
from fuzz import SERVER_ERRORS, TALLY, bodies, check, header_sets, json_values, query_params, sentry_bodies
from hostile import Target, _distinct_submission, valid_endpoints
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.config import Settings
from bugdesk.service import tokens


def fuzz_all(target: Target, per_target: int, deadline: float) -> list[str]:
    """Run every fuzz target with ``per_target`` examples; the failures (a 5xx or a bad refusal), one line each."""
    failures: list[str] = []
    fuzz_settings = settings(max_examples=per_target, deadline=None, derandomize=False, database=None,
                             suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # fmt: skip

    def run(name, fn) -> None:
        if time.monotonic() > deadline:
            return
        try:
            fn()
        except Exception as exc:  # one failing target must not stop the others
            failures.append(f"{name}: {str(exc).splitlines()[0][:300]}")

    def body_fuzz(endpoint):
        @fuzz_settings
        @given(body=bodies(endpoint), headers=header_sets)
        def fuzz(body, headers):
            ids = {**target.fresh(), "other": str(target.other)} if "{" in endpoint.path + repr(endpoint.body) else {}
            headers = {**{k: v.encode() for k, v in endpoint.headers.items()}, **headers}
            headers.setdefault("Content-Type", b"application/json")
            headers.pop("Authorization", None)
            check(target, endpoint.name, endpoint.method, endpoint.path, ids, content=body, headers=headers)

        return fuzz

    def path_fuzz(name, method, template):
        @fuzz_settings
        @given(ident=st.text(min_size=1, max_size=60))
        def fuzz(ident):
            check(target, name, method, template.format(quote(ident, safe="")), {}, json={"outcome": "failed"})

        return fuzz

    def sentry_fuzz(kind):
        @fuzz_settings
        @given(body=sentry_bodies | json_values.map(lambda v: json.dumps(v).encode()), gzip_header=st.booleans())
        def fuzz(body, gzip_header):
            headers = {"X-Sentry-Auth": f"Sentry sentry_key={target.ingest_key}", "Authorization": ""}
            if gzip_header:
                headers["Content-Encoding"] = "gzip"
            check(target, f"sentry-{kind}", "POST", f"/api/1/{kind}/", {}, content=body, headers=headers)

        return fuzz

    @fuzz_settings
    @given(params=query_params)
    def list_fuzz(params):
        check(target, "list", "GET", "/api/bug-reports", {}, params=params)

    for endpoint in valid_endpoints():
        run(endpoint.name, body_fuzz(endpoint))
    run("list", list_fuzz)
    for name, method, template in [("get-by-ref", "GET", "/api/bug-reports/{}"),
                                   ("finish-by-run-id", "POST", "/api/runs/{}/finish"),
                                   ("revoke-by-name", "DELETE", "/api/tokens/{}")]:  # fmt: skip
        run(name, path_fuzz(name, method, template))
    for kind in ("envelope", "store"):
        run(f"sentry-{kind}", sentry_fuzz(kind))
    return failures


@contextlib.contextmanager
def campaign_target(workdir: Path):
    url = f"sqlite:///{workdir / 'fuzz.db'}"
    db = dbmod.use(dbmod.open_database(url))
    db.connect()
    dbmod.upgrade(db)
    secrets = {name: tokens.create_token(name, scopes)[1] for name, scopes in TOKENS.items()}
    other = service.create_report(_distinct_submission(), "seed").report.number
    db.close()
    with server_process(url, free_port(), workdir) as base:
        server = LiveServer(url=base, settings=replace(Settings(), database_url=url), secrets=secrets)
        admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secrets['admin']}"}, timeout=60)
        try:
            yield Target(server=server, admin=admin, ingest_key=secrets["ingest"], other=other)
        finally:
            admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="fuzz cases in total (besides the corpus)")
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--markdown", type=Path, help="write the figures as a markdown snippet here")
    args = parser.parse_args()
    start = time.monotonic()
    deadline = start + args.max_seconds
    with tempfile.TemporaryDirectory() as tmp, campaign_target(Path(tmp)) as target:
        corpus = all_cases()
        corpus_failures = []
        corpus_start = time.monotonic()
        for case in corpus:
            issues = run_case(target, case)
            if issues:
                corpus_failures.append(f"{case.id}: {'; '.join(issues)[:300]}")
        corpus_seconds = time.monotonic() - corpus_start
        targets = len(valid_endpoints()) + 1 + 3 + 2
        fuzz_start = time.monotonic()
        fuzz_failures = fuzz_all(target, max(1, args.examples // targets), deadline)
        fuzz_seconds = time.monotonic() - fuzz_start
        alive = target.alive()
    fuzz_cases = sum(TALLY.values())
    lines = [
        f"- machine: {machine()}",
        f"- corpus: {len(corpus)} hostile cases in {corpus_seconds:.1f} s, {len(corpus_failures)} failed",
        f"- fuzz: {fuzz_cases} Hypothesis cases over {len(TALLY)} targets in {fuzz_seconds:.1f} s "
        f"({fuzz_cases / fuzz_seconds:.0f}/s), {len(fuzz_failures)} targets failed",
        f"- cases tried in total: {len(corpus) + fuzz_cases}; 5xx answers: {len(SERVER_ERRORS)}",
        f"- server alive at the end: {'yes' if alive else 'NO'}; database unchanged by every refused case: "
        f"{'yes' if not any('changed the database' in f for f in corpus_failures + fuzz_failures) else 'NO'}",
    ]
    print("\n".join(lines))
    for failure in (corpus_failures + fuzz_failures)[:20]:
        print("FAILED", failure)
    if args.markdown:
        command = f"uv run python benchmarks/fuzz_campaign.py --examples {args.examples}"
        text = f"## Fuzz campaign (issue 11)\n\n`{command}` against `bugdesk serve` (SQLite):\n\n" + "\n".join(lines)
        args.markdown.write_text(text + "\n", encoding="utf-8")
    sys.exit(0 if alive and not corpus_failures and not fuzz_failures else 1)


if __name__ == "__main__":
    main()
