"""Claims over HTTP: claim-next order, 204 when empty, long-poll, heartbeat, release, tokens, and the claim race."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from apilive import free_port, server_process

from bugdesk import service
from bugdesk.models import BugReport, BugReportEvent


def test_claim_next_hands_out_the_most_severe_report_with_a_token(live, new_report):
    service.create_report(new_report(severity="low"), "seed")
    critical = service.create_report(new_report(severity="critical"), "seed").report
    response = live.client().post("/api/claims/next", json={})
    assert response.status_code == 200
    granted = response.json()
    assert granted["report"]["number"] == critical.number
    assert granted["report"]["status"] == "in_progress"
    assert granted["report"]["claim"]["claimed_by"] == "agent"
    assert granted["claim_token"].startswith("ct_")
    assert granted["report"]["dedup"]["occurrences"] == 1


def test_an_empty_queue_answers_204(live):
    response = live.client().post("/api/claims/next")
    assert response.status_code == 204 and response.content == b""


def test_claim_next_filters_by_severity_and_component(live, new_report):
    service.create_report(new_report(severity="critical", component="billing"), "seed")
    wanted = service.create_report(new_report(severity="low", component="search"), "seed").report
    response = live.client().post("/api/claims/next", json={"severities": ["low"], "components": ["search"]})
    assert response.json()["report"]["number"] == wanted.number


def test_long_poll_returns_a_report_filed_while_waiting(live, new_report):
    filed = threading.Event()

    def file_later():
        # Filed over HTTP by another client once the claimer is already waiting.
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {live.secrets['ingest']}"}) as c:
            filed.wait(5)
            c.post("/api/bug-reports", json=new_report())

    thread = threading.Thread(target=file_later)
    thread.start()
    client = live.client()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(client.post, "/api/claims/next", json={"wait": 10})
        filed.set()
        response = future.result(timeout=20)
    thread.join()
    assert response.status_code == 200
    assert response.json()["report"]["number"] == 1


def test_long_poll_on_an_empty_queue_ends_with_204(live):
    response = live.client().post("/api/claims/next", json={"wait": 0.2})
    assert response.status_code == 204


def test_heartbeat_extends_and_release_returns_the_report_to_the_queue(live, new_report):
    report = service.create_report(new_report(), "seed").report
    client = live.client()
    granted = client.post(f"/api/bug-reports/{report.number}/claim", json={"lease_seconds": 60}).json()
    beat = client.post(
        f"/api/bug-reports/{report.number}/heartbeat",
        json={"claim_token": granted["claim_token"], "lease_seconds": 600},
    )
    assert beat.status_code == 200 and beat.json()["expires_at"] > granted["expires_at"]
    released = client.post(
        f"/api/bug-reports/{report.number}/release", json={"claim_token": granted["claim_token"], "reason": "busy"}
    )
    assert released.json()["status"] == "triaged" and released.json()["claim"] is None


def test_another_agents_claim_is_a_409_and_a_wrong_token_cannot_resolve(live, new_report):
    report = service.create_report(new_report(), "seed").report
    live.add_token("other", "read,write")
    granted = live.client("agent").post(f"/api/bug-reports/{report.number}/claim").json()
    other = live.client("other")
    conflict = other.post(f"/api/bug-reports/{report.number}/claim")
    assert conflict.status_code == 409 and conflict.json()["claimed_by"] == "agent"
    wrong = other.post(f"/api/bug-reports/{report.number}/resolve", json={"claim_token": "ct_wrong"})
    assert wrong.status_code == 409
    done = live.client("agent").post(
        f"/api/bug-reports/{report.number}/resolve",
        json={"claim_token": granted["claim_token"], "commits": ["abcdef1"], "notes": "fixed"},
    )
    assert done.status_code == 200 and done.json()["status"] == "resolved"


def test_a_heartbeat_with_a_wrong_token_is_409(live, new_report):
    report = service.create_report(new_report(), "seed").report
    client = live.client()
    client.post(f"/api/bug-reports/{report.number}/claim")
    response = client.post(f"/api/bug-reports/{report.number}/heartbeat", json={"claim_token": "ct_nope"})
    assert response.status_code == 409


def _drain(url: str, secret: str, clients: int) -> list[int]:
    """``clients`` threads claim-next over HTTP until the queue is empty; every claimed number."""
    claimed: list[int] = []
    lock = threading.Lock()

    def worker():
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {secret}"}, timeout=60) as client:
            while True:
                response = client.post("/api/claims/next", json={})
                if response.status_code == 204:
                    return
                assert response.status_code == 200, response.text
                with lock:
                    claimed.append(response.json()["report"]["number"])

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return claimed


def test_sixteen_concurrent_agents_claim_every_report_exactly_once(live, new_report):
    numbers = [service.create_report(new_report(), "seed").report.number for _ in range(60)]
    claimed = _drain(live.url, live.secrets["agent"], clients=16)
    assert sorted(claimed) == sorted(numbers)
    claims = BugReportEvent.select().where(BugReportEvent.kind == "claimed").count()
    assert claims == len(numbers)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_server_processes_on_postgresql_hand_out_each_report_once(db_url, new_report, tmp_path):
    from bugdesk import db as dbmod
    from bugdesk.service import tokens

    with dbmod.connected(db_url):
        numbers = [service.create_report(new_report(), "seed").report.number for _ in range(60)]
        _, secret = tokens.create_token("racer", "read,write")
    headers = {"Authorization": f"Bearer {secret}"}
    with (
        server_process(db_url, free_port(), tmp_path) as first,
        server_process(db_url, free_port(), tmp_path) as second,
    ):
        # One claim through each process first, so both provably serve; then all race for the rest.
        claimed = [
            httpx.post(f"{u}/api/claims/next", headers=headers).json()["report"]["number"] for u in (first, second)
        ]
        results: dict[str, list[int]] = {}
        threads = [
            threading.Thread(target=lambda u=u: results.__setitem__(u, _drain(u, secret, clients=8)))
            for u in (first, second)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    claimed += results[first] + results[second]
    assert sorted(claimed) == sorted(numbers)
    with dbmod.connected(db_url):
        assert BugReport.select().where(BugReport.claimed_by == "racer").count() == len(numbers)


def test_a_long_poll_ends_when_its_caller_hangs_up(live, new_report, caplog, monkeypatch):
    """Without the check the server would poll on and claim the next report for nobody."""
    import json
    import logging
    import socket

    from apilive import wait_until

    from bugdesk.api.routes import claims

    polled = threading.Event()
    try_claim = claims._try_claim_next

    def counting(*args, **kwargs):
        result = try_claim(*args, **kwargs)
        polled.set()
        return result

    monkeypatch.setattr(claims, "_try_claim_next", counting)
    body = json.dumps({"wait": 20}).encode()
    host, port = live.url.removeprefix("http://").split(":")
    request = (
        f"POST /api/claims/next HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {live.secrets['agent']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    def finished() -> list[str]:
        return [r.getMessage() for r in caplog.records if "/api/claims/next" in r.getMessage()]

    with caplog.at_level(logging.INFO, logger="bugdesk.access"):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(request)
            assert polled.wait(10), "the long-poll never polled"
        wait_until(finished, timeout=10, what="the long-poll to end")
    line = json.loads(finished()[0])
    assert line["status"] == 204 and line["duration_ms"] < 10_000
    report = service.create_report(new_report(), "seed").report
    assert BugReport.get_by_id(report.id).claimed_by is None
