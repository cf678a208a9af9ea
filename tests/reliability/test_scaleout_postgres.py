"""Three API hosts on one PostgreSQL server, each in its own network namespace (issue 11, scale-out).

The topology (benchmarks/_netns.py) is real: a PostgreSQL 15 cluster initdb'd for the run in
namespace ``…-pg``, `bugdesk db upgrade` run once from api1, and `bugdesk serve --host <its
address>` in ``…-api1..3``, reached by agent threads here through the root namespace's bridge.
Needs root and `ip netns`; skipped with the reason elsewhere.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _netns import Topology, scaleout, unavailable_reason

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service import tokens

_REASON = unavailable_reason()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(_REASON is not None, reason=f"scale-out topology: {_REASON}")]

AGENTS_PER_HOST = 2
RACE_REPORTS = 300
CRASH_REPORTS = 40
CRASH_LEASE_S = 5  # the API's minimum lease
KILL_AFTER_CLAIMS = 10
DEADLINE_S = 40  # bounds every agent loop below
MAX_CALLS = 2000


@pytest.fixture(scope="module")
def topo():
    # A benchmark holding the topology lock (benchmarks/scaleout.py) would otherwise outlast the test timeout.
    with scaleout(hosts=3, lock_timeout=120) as topology:
        with dbmod.connected(topology.database_url):
            topology.agent_secrets = {
                f"h{h.index}-a{a}": tokens.create_token(f"h{h.index}-a{a}", "read,write")[1]
                for h in topology.hosts
                for a in range(1, AGENTS_PER_HOST + 1)
            }
        yield topology


def seed(url: str, count: int, tag: str) -> set[str]:
    """An empty queue, then ``count`` distinct open reports; returns their ids."""
    with dbmod.connected(url):
        dbmod.database.execute_sql("TRUNCATE agent_runs, bug_report_events, bug_report_dedup, bug_reports CASCADE")
        return {
            str(service.create_report({"title": f"{tag} {word} breaks", "severity": "high"}, "seed").report.id)
            for word in (_word(i) for i in range(count))
        }


def _word(i: int) -> str:
    # Letters only: fingerprints drop digits, so numbered titles would all be one duplicate group.
    letters = "ghijklmnopqrstuvwxyz"
    return "".join(letters[(i // len(letters) ** k) % len(letters)] for k in range(3)) + "widget"


@dataclass
class Agent:
    name: str
    url: str
    secret: str
    claims: list[dict] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    transport_error: str | None = None

    def run(self, body: dict, *, until, pause: float = 0.0) -> None:
        """claim-next until ``until()`` is true, the host is gone, or the deadline passes."""
        deadline = time.monotonic() + DEADLINE_S
        headers = {"Authorization": f"Bearer {self.secret}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10, trust_env=False) as client:
            for _ in range(MAX_CALLS):
                if until() or time.monotonic() > deadline:
                    return
                try:
                    answer = client.post("/api/claims/next", json=body)
                except httpx.TransportError as exc:
                    self.transport_error = repr(exc)
                    return
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    self.claims.append(answer.json())
                    time.sleep(pause)


def run_agents(agents: list[Agent], body: dict, *, until, pause: float = 0.0) -> list[threading.Thread]:
    threads = [threading.Thread(target=a.run, args=(body,), kwargs={"until": until, "pause": pause}) for a in agents]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=DEADLINE_S + 15)
    assert not any(t.is_alive() for t in threads), "an agent thread did not finish"


def agents_on(topo: Topology, *indexes: int) -> list[Agent]:
    return [
        Agent(name, host.url, secret)
        for host in topo.hosts
        if host.index in indexes
        for name, secret in topo.agent_secrets.items()
        if name.startswith(f"h{host.index}-")
    ]


def claimed_events(url: str, report_ids: set[str]) -> list[tuple[str, str]]:
    """(report id, actor) of every `claimed` event on those reports."""
    with dbmod.connected(url):
        rows = BugReportEvent.select(BugReportEvent.report, BugReportEvent.actor).where(
            BugReportEvent.kind == "claimed"
        )
        return [(str(r.report_id), r.actor) for r in rows if str(r.report_id) in report_ids]


def test_agents_on_three_hosts_racing_claim_next_claim_every_report_exactly_once(topo):
    seeded = seed(topo.database_url, RACE_REPORTS, "race")
    agents = agents_on(topo, 1, 2, 3)

    # A 204 from any host means the shared queue is empty, so every agent stops on its first one.
    join(run_agents(agents, {}, until=lambda: any(a.statuses[204] for a in agents)))

    by_agent = [(c["report"]["id"], a.name) for a in agents for c in a.claims]
    ids = [report_id for report_id, _ in by_agent]
    assert len(ids) == len(set(ids)), "a report was handed to two agents"
    assert set(ids) == seeded
    assert all(a.transport_error is None and set(a.statuses) <= {200, 204} for a in agents), [
        (a.name, a.statuses, a.transport_error) for a in agents
    ]
    per_host = Counter(name.split("-")[0] for _, name in by_agent)
    assert set(per_host) == {"h1", "h2", "h3"}, f"not every host took part in the race: {per_host}"

    # The database agrees: one `claimed` event per report, by the agent that got the answer.
    events = claimed_events(topo.database_url, seeded)
    assert Counter(report_id for report_id, _ in events) == Counter(dict.fromkeys(seeded, 1))
    assert sorted(events) == sorted(by_agent)
    with dbmod.connected(topo.database_url):
        holders = {str(r.id): r.claimed_by for r in BugReport.select(BugReport.id, BugReport.claimed_by)}
    assert holders == dict(by_agent)


def test_claims_of_a_killed_host_expire_and_are_reclaimed_by_agents_on_the_other_hosts(topo):
    seeded = seed(topo.database_url, CRASH_REPORTS, "crash")
    host2 = topo.hosts[1]
    doomed = agents_on(topo, 2)

    # Host 2's agents claim with a short lease, pacing like agents that work on each report,
    # and the host is SIGKILLed while they are still claiming.
    threads = run_agents(doomed, {"lease_seconds": CRASH_LEASE_S}, until=lambda: False, pause=0.05)
    deadline = time.monotonic() + DEADLINE_S
    while sum(len(a.claims) for a in doomed) < KILL_AFTER_CLAIMS and time.monotonic() < deadline:
        time.sleep(0.005)
    topo.kill_server(host2)
    killed_at = time.monotonic()
    join(threads)
    assert all(a.transport_error for a in doomed), "host 2's agents should have lost their server"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{host2.url}/api/health", timeout=2, trust_env=False)

    # Claims host 2 made, including any committed just before the kill whose answer never arrived.
    orphaned = {report_id for report_id, actor in claimed_events(topo.database_url, seeded) if actor.startswith("h2-")}
    seen_by_doomed = {c["report"]["id"] for a in doomed for c in a.claims}
    assert len(orphaned) >= KILL_AFTER_CLAIMS and seen_by_doomed <= orphaned
    assert len(orphaned) < CRASH_REPORTS, "host 2 took every report before it was killed"

    # Agents on hosts 1 and 3 long-poll until they hold every report of this test.
    survivors = agents_on(topo, 1, 3)

    def all_taken() -> bool:
        return {c["report"]["id"] for a in survivors for c in a.claims} >= seeded

    join(run_agents(survivors, {"wait": 1}, until=all_taken))
    assert time.monotonic() - killed_at < DEADLINE_S

    reclaimed = [c["report"]["id"] for a in survivors for c in a.claims]
    assert len(reclaimed) == len(set(reclaimed)) and set(reclaimed) == seeded
    events = claimed_events(topo.database_url, seeded)
    by_survivors = Counter(report_id for report_id, actor in events if not actor.startswith("h2-"))
    assert by_survivors == Counter(dict.fromkeys(seeded, 1))

    # Each orphaned report's timeline, read through host 3: host 2's claim, the expiry, the new claim.
    admin = {"Authorization": f"Bearer {topo.agent_secrets['h3-a1']}"}
    with httpx.Client(base_url=topo.hosts[2].url, headers=admin, timeout=10, trust_env=False) as client:
        for report_id in orphaned:
            timeline = client.get(f"/api/bug-reports/{report_id}/events").json()
            timeline.sort(key=lambda e: e["id"])
            kinds = [(e["kind"], e["actor"][:2]) for e in timeline if e["kind"] != "created"]
            assert [k for k, _ in kinds] == ["claimed", "lease_expired", "claimed"], timeline
            first, expiry, second = (e for e in timeline if e["kind"] != "created")
            assert first["actor"].startswith("h2-") and second["actor"][:2] in ("h1", "h3")
            assert expiry["actor"] == "system" and expiry["data"]["agent"] == first["actor"]
            lease_end = datetime.fromisoformat(first["data"]["expires_at"])
            assert datetime.fromisoformat(expiry["created_at"]) >= lease_end
            assert datetime.fromisoformat(second["created_at"]) >= lease_end
