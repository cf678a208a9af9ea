"""A small bugdesk history built through the service layer, and a synchronous client for an in-process Datasette.

``seed_world`` files, triages, claims, expires, resolves, closes, groups,
merges and regresses reports at chosen times relative to now, and records in
a ``World`` what it did, so that the tests compute each canned query's
expected rows from the seeding, not from the queries under test.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.clock import utcnow
from bugdesk.models import BugReport
from bugdesk.service import dedup, releases, runs, tokens

AGENT_A = "agent-a"
AGENT_B = "agent-b"
SHA_A = "a1" * 20  # release 1.0, deployed 30 days ago
SHA_B = "b2" * 20  # release 1.1, deployed 5 days ago: carries the fix that will not hold
SHA_C = "c3" * 20  # release 1.2, deployed 2 days ago: the regression comes from it
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
STACK_WORD = "frobnicate"  # only in one report's stack trace


def word() -> str:
    """A random word without digits or hex-only runs, so fingerprints keep titles apart."""
    return "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(12))


@dataclass
class World:
    now: datetime
    path: Path
    numbers: dict[str, int] = field(default_factory=dict)
    # (UTC day, agent) -> Counter of claimed / resolved / lease_expired
    activity: dict[tuple[str, str], Counter] = field(default_factory=dict)
    # canonical number -> (occurrences, fingerprints)
    clusters: dict[int, tuple[int, int]] = field(default_factory=dict)
    by_release: dict[str, set[int]] = field(default_factory=dict)
    trace_reports: set[int] = field(default_factory=set)
    token_hash: str = ""
    claim_token_hash: str = ""

    def did(self, at: datetime, agent: str, kind: str) -> None:
        self.activity.setdefault((at.date().isoformat(), agent), Counter())[kind] += 1


def file(world: World, label: str, *, ago: timedelta, **data: Any) -> int:
    """File a report created ``ago`` before now (its events at that time too)."""
    at = world.now - ago
    data.setdefault("title", f"problem with the {word()} widget")
    data.setdefault("severity", "medium")
    created = service.create_report({"created_at": at, **data}, "reporter", now=at)
    world.numbers[label] = created.report.number
    if data.get("release_sha"):
        world.by_release.setdefault(data["release_sha"], set()).add(created.report.number)
    if data.get("trace_id"):
        world.trace_reports.add(created.report.number)
    return created.report.number


def claim(world: World, number: int, agent: str, at: datetime, **kw: Any) -> str:
    world.did(at, agent, "claimed")
    return service.claim(number, agent, now=at, **kw).token


def resolve(world: World, number: int, actor: str, at: datetime, **kw: Any) -> None:
    world.did(at, actor, "resolved")
    service.resolve(number, actor, now=at, **kw)


def seed_world(path: Path) -> World:
    """Build the history the analyst tests query; returns what was done."""
    world = World(now=utcnow(), path=path)
    day = timedelta(days=1)
    hour = timedelta(hours=1)
    with dbmod.connected(str(path)):
        for sha, version, ago in ((SHA_A, "1.0", 30 * day), (SHA_B, "1.1", 5 * day), (SHA_C, "1.2", 2 * day)):
            releases.add_release(sha, version=version, deployed_at=world.now - ago)

        # Open reports, some past their SLA (critical 4 h, high 24 h, medium 3 d, low 14 d).
        file(world, "critical_late", ago=2 * day, severity="critical", category="crash", component="billing")
        high = file(world, "high_late", ago=30 * hour, severity="high", category="crash", component="billing")
        service.triage(high, "alice", version=None, now=world.now - 29 * hour)
        file(world, "medium_fresh", ago=hour, severity="medium", category="ui", trace_id=TRACE, release_sha=SHA_C)
        file(world, "low_oldest", ago=20 * day, severity="low", category="data", release_sha=SHA_A)
        file(world, "traced_peer", ago=hour / 2, severity="low", category="ui", trace_id=TRACE, component="web")
        file(
            world, "searchable", ago=3 * day, severity="high", category="crash", release_sha=SHA_A,
            stacktrace=(
                "Traceback (most recent call last):\n"
                f'  File "/srv/app/ledger/book.py", line 12, in {STACK_WORD}_ledger\n'
                "    total = entries[key]\n"
                "KeyError: 'ledger'"
            ),
            exception_type="KeyError",
        )  # fmt: skip

        # Resolutions at known times: by agents after a claim, and by a human.
        r1 = file(world, "resolved_fast", ago=10 * day, severity="high", category="crash", release_sha=SHA_A)
        t = world.now - 10 * day + hour
        token = claim(world, r1, AGENT_A, t)
        resolve(world, r1, AGENT_A, t + 4 * hour, claim_token=token, notes="fixed")

        r2 = file(world, "resolved_after_expiry", ago=9 * day, severity="high", category="crash")
        t = world.now - 9 * day + hour
        claim(world, r2, AGENT_B, t, lease_seconds=60)
        service.expire_leases(now=t + timedelta(minutes=2))
        world.did(t + timedelta(minutes=2), AGENT_B, "lease_expired")
        token = claim(world, r2, AGENT_A, t + timedelta(minutes=3))
        resolve(world, r2, AGENT_A, t + 8 * hour, claim_token=token)

        r3 = file(world, "resolved_by_human", ago=4 * day, severity="medium", category="ui")
        resolve(world, r3, "alice", world.now - 4 * day + 30 * hour)

        r4 = file(world, "wont_fix", ago=6 * day, severity="low", category="other")
        service.move(r4, "closed", "alice", version=None, close_reason="wont_fix", now=world.now - 5 * day)

        # A live claim: its token hash is in the database and must never be served.
        live = file(world, "claimed_now", ago=5 * hour, severity="high", category="data")
        claim(world, live, AGENT_B, world.now - hour, lease_seconds=86_400)
        run = runs.start_agent_run(live, AGENT_B, now=world.now - hour)
        runs.finish_agent_run(run.id, "failed", log="could not reproduce", now=world.now - hour / 2)

        # Duplicate groups: five occurrences of one error; two groups of two merged into one.
        big = dict(title="Timeout talking to the ledger service", severity="high", category="performance")
        c1 = file(world, "cluster_big", ago=8 * day, component="ledger", **big)
        for i in range(4):
            file(world, f"cluster_big_dup{i}", ago=(7 - i) * day, component="ledger", **big)
        world.clusters[c1] = (5, 1)
        small = dict(title="Avatar upload rejected", severity="low", category="ui")
        other = dict(title="Avatar resize crashed", severity="low", category="ui")
        c2 = file(world, "cluster_merged", ago=6 * day, component="profile", **small)
        file(world, "cluster_merged_dup", ago=5 * day, component="profile", **small)
        c3 = file(world, "cluster_folded", ago=4 * day, component="profile", **other)
        file(world, "cluster_folded_dup", ago=3 * day, component="profile", **other)
        dedup.merge(c3, c2, "alice", now=world.now - 2 * day)
        world.clusters[c2] = (4, 2)

        # A fix that did not hold: resolved in 1.1, back from 1.2.
        flaky = dict(title="Ledger rounding off by one cent", severity="medium", category="data", component="ledger")
        c4 = file(world, "regressed", ago=20 * day, release_sha=SHA_A, **flaky)
        resolve(world, c4, "alice", world.now - 6 * day, fixed_in_release=SHA_B)
        file(world, "regression", ago=26 * hour, release_sha=SHA_C, **flaky)
        world.clusters[c4] = (2, 1)

        token_row, _secret = tokens.create_token("analyst-probe", "admin")
        world.token_hash = token_row.token_hash
        world.claim_token_hash = BugReport.get(BugReport.number == live).claim_token_hash
        assert world.token_hash and world.claim_token_hash
    return world


def file_digest(path: Path) -> str:
    """The bytes of the database and its WAL: what "the database is unchanged" means here."""
    digest = hashlib.sha256()
    for suffix in ("", "-wal"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            digest.update(part.read_bytes())
    return digest.hexdigest()


class Client:
    """Datasette's in-process ASGI client, driven synchronously on one event loop (Datasette's locks bind to it)."""

    def __init__(self, ds: Any) -> None:
        self.ds = ds
        self.loop = asyncio.new_event_loop()

    def get(self, path: str) -> Any:
        return self.loop.run_until_complete(self.ds.client.get(path))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.ds.client.post(path, **kwargs))

    def rows(self, path: str) -> list[dict[str, Any]]:
        """``path`` as JSON ``_shape=array`` rows; fails with Datasette's message on an error."""
        sep = "&" if "?" in path else "?"
        response = self.get(f"{path}{sep}_shape=array")
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        for database in self.ds.databases.values():
            database.close()
        self.loop.close()
