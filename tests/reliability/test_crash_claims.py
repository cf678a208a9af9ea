"""A claim whose holder dies, on SQLite and PostgreSQL: the lease runs out, the report is claimable again,
and its timeline says so.

Two ways to die: the agent process gets SIGKILL while it holds a claim and heartbeats; and the API
server gets SIGKILL while agents' claim-next calls are in flight (some committed, their answers lost).
A real `bugdesk serve` subprocess over a socket in both; leases are 5-6 s (the shortest allowed is 5).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime

import httpx
import pytest
from crashkit import ServeProcess, word

from bugdesk import db as dbmod
from bugdesk import ops, service
from bugdesk.models import BugReport
from bugdesk.service import tokens

_AGENT = textwrap.dedent(
    """
    import json, sys, time
    import httpx
    base, secret = sys.argv[1], sys.argv[2]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
        granted = http.post("/api/claims/next", json={"lease_seconds": 5}).json()
        number, token = granted["report"]["number"], granted["claim_token"]
        print(json.dumps({"number": number, "token": token, "expires_at": granted["expires_at"]}), flush=True)
        while True:  # a working agent: heartbeats until it is killed
            time.sleep(1)
            beat = http.post(f"/api/bug-reports/{number}/heartbeat", json={"claim_token": token, "lease_seconds": 5})
            print(json.dumps({"beat": beat.status_code, "expires_at": beat.json().get("expires_at")}), flush=True)
    """
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _client(base: str, secret: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=40)


def _timeline(http: httpx.Client, number: int) -> list[dict]:
    response = http.get(f"/api/bug-reports/{number}/events")
    assert response.status_code == 200, response.text
    return response.json()


def _setup(db_url: str, reports: int) -> tuple[str, str]:
    rng = random.Random()
    with dbmod.connected(db_url):
        for _ in range(reports):
            # A distinct word each: numbers would be normalised away and every report grouped into one.
            service.create_report({"title": f"checkout widget {word(rng)} fails", "severity": "high"}, "seed")
        _, a = tokens.create_token("agent-a", "read,write")
        _, b = tokens.create_token("agent-b", "read,write")
    return a, b


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_claim_whose_agent_process_is_killed_expires_and_goes_to_the_next_agent(db_url, tmp_path):
    secret_a, secret_b = _setup(db_url, 1)
    server = ServeProcess(db_url, tmp_path)
    base = server.start()
    try:
        agent = subprocess.Popen(
            [sys.executable, "-c", _AGENT, base, secret_a], stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            granted = json.loads(agent.stdout.readline())
            beat = json.loads(agent.stdout.readline())
            assert beat["beat"] == 200
        finally:
            os.killpg(agent.pid, signal.SIGKILL)
            agent.wait(timeout=30)
            agent.stdout.close()
        lease_end = _at(beat["expires_at"])
        with _client(base, secret_b) as b:
            # The dead agent's lease is still running: nobody else may take the report yet.
            assert b.post("/api/claims/next", json={}).status_code == 204
            taken = b.post("/api/claims/next", json={"wait": 20, "lease_seconds": 60})
            assert taken.status_code == 200, taken.text
            assert taken.json()["report"]["number"] == granted["number"]
            timeline = _timeline(b, granted["number"])
            # The dead agent's token no longer holds anything.
            stale = b.post(f"/api/bug-reports/{granted['number']}/heartbeat", json={"claim_token": granted["token"]})
            assert stale.status_code == 409
    finally:
        server.stop()
    kinds = [e["kind"] for e in timeline]
    assert kinds[:2] == ["created", "claimed"] and kinds[-2:] == ["lease_expired", "claimed"]
    assert set(kinds[2:-2]) == {"heartbeat"}
    expired, reclaimed = timeline[-2], timeline[-1]
    assert (expired["actor"], expired["data"], expired["from_status"], expired["to_status"]) == (
        "system", {"agent": "agent-a"}, "in_progress", "triaged",
    )  # fmt: skip
    assert _at(expired["created_at"]) >= lease_end
    assert reclaimed["actor"] == "agent-b" and reclaimed["to_status"] == "in_progress"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_claims_in_flight_when_the_server_is_killed_hold_until_their_lease_ends_then_go_to_the_next_agent(
    db_url, tmp_path
):
    total, lease = 60, 6
    secret_a, secret_b = _setup(db_url, total)
    server = ServeProcess(db_url, tmp_path)
    base = server.start()
    acked: dict[int, dict] = {}
    lock = threading.Lock()
    killed = threading.Event()

    def agent_a() -> None:
        with _client(base, secret_a) as http:
            while not killed.is_set():
                try:
                    answer = http.post("/api/claims/next", json={"lease_seconds": lease})
                except httpx.TransportError:
                    return
                if answer.status_code != 200:
                    return
                with lock:
                    acked[answer.json()["report"]["number"]] = answer.json()

    threads = [threading.Thread(target=agent_a, daemon=True) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 10 and time.monotonic() < deadline:
            time.sleep(0.002)
        server.kill()  # eight claim-next calls are in flight at this moment
        killed.set()
        for t in threads:
            t.join(timeout=30)
        assert 10 <= len(acked) < total, "the kill should land while claims are being handed out"

        base = server.start()
        with dbmod.connected(db_url):
            held = {
                number: (token_hash, expires)
                for number, token_hash, expires in BugReport.select(
                    BugReport.number, BugReport.claim_token_hash, BugReport.claim_expires_at
                )
                .where(BugReport.claimed_by == "agent-a")
                .tuples()
            }
        # Every claim agent-a was told about is stored, under the token it was given.
        for number, granted in acked.items():
            assert held[number][0] == hashlib.sha256(granted["claim_token"].encode()).hexdigest()

        got: set[int] = set()
        with _client(base, secret_b) as b:
            deadline = time.monotonic() + 40
            while len(got) < total and time.monotonic() < deadline:
                answer = b.post("/api/claims/next", json={"wait": 10, "lease_seconds": 300})
                assert answer.status_code in (200, 204), answer.text
                if answer.status_code == 200:
                    got.add(answer.json()["report"]["number"])
            timelines = {number: _timeline(b, number) for number in range(1, total + 1)}
    finally:
        killed.set()
        server.stop()

    assert sorted(got) == list(range(1, total + 1)), "some reports never became claimable again"
    for number, timeline in timelines.items():
        kinds = [(e["kind"], e["actor"]) for e in timeline]
        if number in held:
            # A claim committed before the kill, answered or not: it held until its lease ended, then moved on.
            assert kinds == [("created", "seed"), ("claimed", "agent-a"), ("lease_expired", "system"),
                             ("claimed", "agent-b")], number  # fmt: skip
            assert timeline[2]["data"] == {"agent": "agent-a"}
            # Ended no earlier than the lease stored before the kill, and handed on only after that.
            assert held[number][1] <= _at(timeline[2]["created_at"]) <= _at(timeline[3]["created_at"])
        else:
            # Never claimed (or its claim died with its transaction): claimable at once, no trace of agent-a.
            assert kinds == [("created", "seed"), ("claimed", "agent-b")], number
    with dbmod.connected(db_url) as database:
        assert [f.check for f in ops.doctor(database) if not f.ok] == []
