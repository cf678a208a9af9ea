"""The httpx client library against the live server: typed calls, errors as bugdesk errors, leases, retries
(against a flaky transport, and against real servers that shed load, start late or lose an answer)."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace

import httpx
import pytest
from apilive import free_port, submission, wait_until
from overloadkit import AnswerLosingProxy, HeldRequest, bounded_server, server_later, shed

from bugdesk import db as dbmod
from bugdesk import errors, service
from bugdesk.client import ApiError, Client, Lease
from bugdesk.config import Settings
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service import tokens


@pytest.fixture
def api(live):
    with Client(live.url, live.secrets["agent"], backoff=0.001) as client:
        yield client


def test_create_read_update_and_list(api, new_report):
    created = api.create_report(new_report(), severity="critical")
    number = created["canonical"]["number"]
    report = api.get_report(number)
    assert report["severity"] == "critical" and report["dedup"]["occurrences"] == 1
    updated = api.update_report(number, version=report["version"], assignee_id="ann")
    assert updated["assignee_id"] == "ann" and updated["version"] == 2
    assert [r["number"] for r in api.iter_reports(status="open", limit=1)] == [number]
    assert api.status()["open"] == 1
    assert "bugdesk_open_reports 1" in api.metrics()


def test_errors_arrive_as_bugdesk_error_classes(api, new_report):
    number = api.create_report(new_report())["canonical"]["number"]
    api.update_report(number, version=1, severity="low")
    with pytest.raises(errors.StaleVersion) as stale:
        api.update_report(number, version=1, severity="high")
    assert stale.value.details["current_version"] == 2
    with pytest.raises(errors.IllegalTransition) as illegal:
        api.update_report(number, version=2, status="awaiting_verification")
    assert "in_progress" in illegal.value.details["allowed"]
    with pytest.raises(errors.NotFound):
        api.get_report(424242)
    with pytest.raises(ApiError) as missing:
        api._json("PATCH", f"/api/bug-reports/{number}", json={"severity": "low"})
    assert missing.value.http_status == 428


def test_a_lease_heartbeats_while_held_and_resolves(api, new_report):
    service.create_report(new_report(), "seed")
    lease = api.claim_next(lease_seconds=30)
    assert isinstance(lease, Lease)
    lease.heartbeat_every = 0.05
    with lease:
        # Wait for two heartbeats from the background thread, then finish the work.
        _wait_for_events(lease.ref, "heartbeat", 2)
        lease.log("looked at it", data={"files": ["a.py"]})
        resolved = lease.resolve(commits=["abcdef1"], notes="fixed")
    assert resolved["status"] == "resolved" and lease.lost is None
    kinds = _kinds(lease.ref)
    assert kinds.count("heartbeat") >= 2 and "agent_log" in kinds and "released" not in kinds


def test_an_exception_inside_the_lease_releases_the_claim(api, new_report):
    report = service.create_report(new_report(), "seed").report
    with pytest.raises(RuntimeError), api.claim(report.number):
        raise RuntimeError("tests are red")
    stored = BugReport.get_by_id(report.id)
    assert stored.claimed_by is None and stored.status == "triaged"
    released = BugReportEvent.select().where(BugReportEvent.kind == "released").get()
    assert "RuntimeError: tests are red" in released.body


def test_claim_next_returns_none_on_an_empty_queue(api):
    assert api.claim_next() is None


def test_runs_notes_and_admin_calls(live, api, new_report):
    number = api.create_report(new_report())["canonical"]["number"]
    run = api.start_run(number)
    assert api.finish_run(run["id"], "succeeded", commits=["abcdef1"])["outcome"] == "succeeded"
    assert api.runs(number)[0]["commits"] == ["abcdef1"]
    api.add_note(number, "hello")
    assert api.events(number)[-1]["body"] == "hello"
    assert api.add_release("abcdef12", version="2.0")["version"] == "2.0"
    with Client(live.url, live.secrets["admin"]) as admin:
        other = admin.create_report(new_report())["canonical"]["number"]
        assert admin.merge(other, number)["number"] == number
        assert admin.split(other)["duplicate_of_id"] is None
        secret = admin.create_token("temp", ["read"])["secret"]
        assert "temp" in [t["name"] for t in admin.tokens()]
        assert admin.revoke_token("temp")["revoked_at"]
    with Client(live.url, secret) as revoked, pytest.raises(errors.AuthError):
        revoked.status()


class FlakyTransport(httpx.BaseTransport):
    """Fails the first ``failures`` requests the way a network does, then passes them to the real server."""

    def __init__(self, failures: int, *, after_sending: bool = False, status: int | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.failures = failures
        self.after_sending = after_sending
        self.status = status
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            if self.status:
                return httpx.Response(self.status, headers={"Retry-After": "0"}, request=request)
            if self.after_sending:
                # The server got and handled it; only the answer was lost.
                self.inner.handle_request(request).read()
                raise httpx.ReadError("connection reset", request=request)
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)


def test_connection_errors_and_503_are_retried(live, new_report):
    for transport in (FlakyTransport(2), FlakyTransport(2, status=503), FlakyTransport(1, status=429)):
        with Client(live.url, live.secrets["agent"], transport=transport, backoff=0.001) as client:
            assert client.create_report(new_report())["canonical"]["number"] >= 1
    assert BugReport.select().count() == 3


def test_a_create_retried_after_a_lost_answer_is_stored_once(live, new_report):
    transport = FlakyTransport(1, after_sending=True)
    with Client(live.url, live.secrets["agent"], transport=transport, backoff=0.001) as client:
        answer = client.create_report(new_report())
    assert transport.calls == 2 and answer["replayed"] is True
    assert BugReport.select().count() == 1


def test_a_non_idempotent_call_is_not_resent_after_a_lost_answer(live, new_report):
    service.create_report(new_report(), "seed")
    transport = FlakyTransport(1, after_sending=True)
    with (
        Client(live.url, live.secrets["agent"], transport=transport, backoff=0.001) as client,
        pytest.raises(httpx.ReadError),
    ):
        client.claim_next()
    assert transport.calls == 1


def test_retries_give_up_after_the_limit(live):
    with (
        Client(live.url, live.secrets["agent"], transport=FlakyTransport(10), retries=2, backoff=0.001) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.status()


def _kinds(number: int) -> list[str]:
    report = BugReport.get(BugReport.number == number)
    events = BugReportEvent.select().where(BugReportEvent.report == report.id).order_by(BugReportEvent.id)
    return [e.kind for e in events]


def _wait_for_events(number: int, kind: str, count: int) -> None:
    wait_until(lambda: _kinds(number).count(kind) >= count, what=f"{count} {kind} events")


# ---------------------------------------------------------------- against real servers that shed, start late or lose


def test_a_create_shed_by_a_busy_server_is_retried_until_admitted(tmp_path):
    """One write slot, taken: the client's create is shed with 429 + Retry-After, and it comes back after the
    slot frees and is stored once; a note (not idempotent) is sent again too, since a shed call did nothing."""
    with bounded_server(tmp_path, api_max_in_flight=1, api_max_writes_in_flight=1, api_queue_wait_ms=0) as live:
        number = service.create_report(submission(), "seed").report.number
        with Client(live.url, live.secrets["agent"], backoff=0.05) as client:
            for call in (lambda: client.create_report(submission()), lambda: client.add_note(number, "looked")):
                before = shed(live)
                held = HeldRequest(live)
                releaser = threading.Thread(target=_finish_once_shed, args=(live, held, before))
                releaser.start()
                try:
                    call()
                finally:
                    releaser.join(timeout=20)
                    held.close()
                assert shed(live) > before
        assert BugReport.select().count() == 4  # the seed, two held submissions and the client's create
        assert _kinds(number).count("note") == 1


def _finish_once_shed(live, held: HeldRequest, before: int) -> None:
    wait_until(lambda: shed(live) > before, what="the client's request shed")
    held.finish()


def test_a_client_started_before_the_server_retries_until_it_answers(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'late.db'}"
    with dbmod.connected(url):
        _, secret = tokens.create_token("early-bird", "read,write")
    settings = replace(Settings(), database_url=url, release="")
    caplog.set_level(logging.INFO, logger="bugdesk.client")
    with (
        server_later(settings, free_port(), delay=0.5) as base,
        Client(base, secret, retries=8, backoff=0.1) as client,
    ):
        answer = client.create_report(submission())
        assert "ConnectError, retrying" in caplog.text  # refused first, then sent again
        assert answer["replayed"] is False
        assert BugReport.select().count() == 1


def test_a_create_whose_answer_was_lost_on_the_wire_is_stored_once(live, new_report):
    """The proxy hands the request to the server and drops the connection before the answer: the retry with the
    same Idempotency-Key gets the first answer back, replayed, and nothing is filed twice."""
    proxy = AnswerLosingProxy(live.url, lose=1)
    try:
        with Client(proxy.url, live.secrets["agent"], backoff=0.01) as client:
            answer = client.create_report(new_report())
    finally:
        proxy.close()
    assert proxy.forwarded == 2 and answer["replayed"] is True
    assert BugReport.select().count() == 1


def test_a_bare_503_is_not_resent_for_a_call_that_may_have_run(live, new_report):
    """A 503 without bugdesk's problem type may come from a proxy that timed out after forwarding the call:
    a note could already be stored, so the client does not send it again (a create, with its key, would be)."""
    number = service.create_report(new_report(), "seed").report.number
    transport = FlakyTransport(1, status=503)
    with (
        Client(live.url, live.secrets["agent"], transport=transport, backoff=0.001) as client,
        pytest.raises(ApiError) as refused,
    ):
        client.add_note(number, "maybe twice")
    assert refused.value.http_status == 503 and transport.calls == 1
