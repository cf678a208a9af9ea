"""Claims: leases, tokens, expiry, and exactly-once claim-next under contention."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta

import pytest

from bugdesk import db as dbmod
from bugdesk import errors, service
from bugdesk.clock import utcnow
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service import runs


def _kinds(report_id) -> list[str]:
    return [
        e.kind for e in BugReportEvent.select().where(BugReportEvent.report == report_id).order_by(BugReportEvent.id)
    ]


def test_claim_next_takes_the_most_severe_then_the_earliest_sla(db, make_report):
    low = make_report(severity="low")
    crit_late = make_report(severity="critical")
    high = make_report(severity="high")
    crit_early = make_report(severity="critical")
    BugReport.update(sla_due_at=crit_late.sla_due_at - timedelta(hours=2)).where(
        BugReport.id == crit_early.id
    ).execute()
    order = [service.claim_next(f"agent-{i}").report.id for i in range(4)]
    assert order == [crit_early.id, crit_late.id, high.id, low.id]
    with pytest.raises(errors.QueueEmpty):
        service.claim_next("agent-9")


def test_a_claim_moves_the_report_in_progress_and_returns_a_token_stored_only_as_a_hash(db, make_report):
    report = make_report()
    claim = service.claim(report.id, "agent-1")
    stored = BugReport.get_by_id(report.id)
    assert stored.status == "in_progress" and stored.claimed_by == "agent-1"
    assert claim.token not in (stored.claim_token_hash or "") and len(stored.claim_token_hash) == 64
    assert _kinds(report.id) == ["created", "claimed"]


def test_only_the_token_holder_can_resolve_or_release(db, make_report):
    report = make_report()
    claim = service.claim(report.id, "agent-1")
    with pytest.raises(errors.ClaimConflict):
        service.claim(report.id, "agent-2")
    with pytest.raises(errors.ClaimConflict):
        service.resolve(report.id, "agent-2", claim_token="ct_wrong")
    with pytest.raises(errors.ClaimConflict):
        service.release(report.id, "ct_wrong")
    resolved = service.resolve(report.id, "agent-1", claim_token=claim.token, commits=["abcdef1"])
    assert resolved.status == "resolved" and resolved.claimed_by is None
    assert _kinds(report.id) == ["created", "claimed", "resolved"]


def test_heartbeat_extends_the_lease_and_release_returns_the_report_to_the_queue(db, make_report):
    report = make_report()
    claim = service.claim(report.id, "agent-1", lease_seconds=60)
    later = service.heartbeat(report.id, claim.token, lease_seconds=600)
    assert later > claim.expires_at
    released = service.release(report.id, claim.token, reason="cannot reproduce")
    assert released.status == "triaged" and released.claimed_by is None
    assert _kinds(report.id) == ["created", "claimed", "heartbeat", "released"]
    assert service.claim_next("agent-2").report.id == report.id


def test_an_expired_lease_makes_the_report_claimable_again_and_the_timeline_says_so(db, make_report):
    report = make_report()
    claim = service.claim(report.id, "agent-1", lease_seconds=30)
    future = utcnow() + timedelta(minutes=5)
    with pytest.raises(errors.ClaimConflict):
        service.heartbeat(report.id, claim.token, now=future)
    second = service.claim_next("agent-2", now=future)
    assert second.report.id == report.id
    assert _kinds(report.id) == ["created", "claimed", "lease_expired", "claimed"]
    expired = BugReportEvent.get(BugReportEvent.report == report.id, BugReportEvent.kind == "lease_expired")
    assert expired.data == {"agent": "agent-1"}
    with pytest.raises(errors.ClaimConflict):
        service.resolve(report.id, "agent-1", claim_token=claim.token, now=future)


def test_the_sweep_expires_leases_without_a_claimer(db, make_report):
    reports = [make_report() for _ in range(3)]
    for r in reports:
        service.claim(r.id, "agent-1", lease_seconds=10)
    assert service.expire_leases(now=utcnow() + timedelta(seconds=11)) == 3
    assert {r.status for r in BugReport.select()} == {"triaged"}


def test_claim_next_skips_reports_the_agent_failed_and_flags_repeated_failures(db, make_report, settings):
    first, second = make_report(severity="critical"), make_report(severity="low")
    claim = service.claim_next("agent-1")
    assert claim.report.id == first.id
    run = runs.start_agent_run(first.id, "agent-1")
    runs.finish_agent_run(run.id, "failed", log="tests still red")
    service.release(first.id, claim.token)
    assert service.claim_next("agent-1").report.id == second.id
    for agent in ("agent-2", "agent-3"):
        run = runs.start_agent_run(first.id, agent)
        runs.finish_agent_run(run.id, "failed", settings=settings)
    flagged = BugReport.get_by_id(first.id)
    assert flagged.needs_human
    with pytest.raises(errors.QueueEmpty):
        service.claim_next("agent-4")
    service.triage(first.id, "human", version=flagged.version, severity="high")
    assert not BugReport.get_by_id(first.id).needs_human
    assert service.claim_next("agent-4").report.id == first.id


def _drain(agent: str, out: list, errors_out: list) -> None:
    """Claim until the queue is empty, on this thread's own connection."""
    database = dbmod.database
    try:
        database.connect(reuse_if_open=True)
        while True:
            try:
                out.append(service.claim_next(agent).report.id)
            except errors.QueueEmpty:
                return
    except Exception as exc:  # surfaced by the test
        errors_out.append(repr(exc))
    finally:
        database.close()


def test_sixteen_threads_claim_every_report_exactly_once(db, db_url, make_report):
    ids = {make_report(severity=("critical", "high", "medium", "low")[i % 4]).id for i in range(120)}
    db.close()
    claimed: list = []
    failures: list = []
    threads = [threading.Thread(target=_drain, args=(f"agent-{i}", claimed, failures)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    assert len(claimed) == len(ids)
    assert set(claimed) == ids
    db.connect(reuse_if_open=True)
    assert BugReportEvent.select().where(BugReportEvent.kind == "claimed").count() == len(ids)


def _process_drain(url: str, agent: str, queue, barrier) -> None:
    dbmod.use(dbmod.open_database(url))
    barrier.wait(timeout=60)  # both processes start claiming together
    claimed: list = []
    failures: list = []
    threads = [threading.Thread(target=_drain, args=(f"{agent}-{i}", claimed, failures)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(([str(c) for c in claimed], failures))


def test_two_processes_claim_every_report_exactly_once(db, db_url, make_report):
    ids = {str(make_report().id) for _ in range(100)}
    db.close()
    ctx = multiprocessing.get_context("spawn")
    queue, barrier = ctx.Queue(), ctx.Barrier(2)
    procs = [ctx.Process(target=_process_drain, args=(db_url, f"proc{i}", queue, barrier)) for i in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    claimed = [c for got, _ in results for c in got]
    assert [f for _, fs in results for f in fs] == []
    assert len(claimed) == len(ids) and set(claimed) == ids
    if db_url.startswith("postgres"):
        # SKIP LOCKED lets both make progress; SQLite's busy wait may let one drain the queue alone.
        assert all(got for got, _ in results), "both processes should have won some claims"
