"""Grouping in the create path: duplicates, aggregated occurrences, regressions, merge, split, races."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from bugdesk import db as dbmod
from bugdesk import errors, queries, service
from bugdesk.clock import utcnow
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent
from bugdesk.queries import ReportFilter
from bugdesk.service import dedup, releases

TRACE = """Traceback (most recent call last):
  File "/srv/app/releases/{sha}/shop/orders/views.py", line {line}, in place_order
    total = pricing.total(cart)
  File "/srv/app/releases/{sha}/shop/pricing/engine.py", line {line2}, in total
    return sum(prices[item] for item in cart)
KeyError: '{key}'"""


def crash(line: int = 10, key: str = "sku-1", sha: str = "a" * 40, **extra) -> dict:
    data = {
        "title": "500 when placing an order",
        "severity": "high",
        "stacktrace": TRACE.format(sha=sha, line=line, line2=line + 40, key=key),
    }
    data.update(extra)
    return data


def events(report, kind: str | None = None) -> list[BugReportEvent]:
    query = BugReportEvent.select().where(BugReportEvent.report == report.id)
    if kind:
        query = query.where(BugReportEvent.kind == kind)
    return list(query.order_by(BugReportEvent.id))


def test_a_repeated_crash_is_stored_as_a_duplicate_and_counted(db):
    first = service.create_report(crash(line=10), "svc")
    second = service.create_report(crash(line=99, key="sku-77", sha="b" * 40), "svc")
    assert not first.deduplicated and second.deduplicated
    assert second.report.duplicate_of_id == first.report.id
    assert BugReport.get_by_id(second.report.id).duplicate_of_id == first.report.id
    row = BugReportDedup.get(BugReportDedup.canonical == first.report.id)
    assert row.occurrences == 2 and row.kind == "stack"
    assert "place_order" in row.signature and "KeyError" in row.signature
    open_ids = [r.id for r in queries.list_reports(ReportFilter(status=["open"])).items]
    assert open_ids == [first.report.id]
    with_dups = queries.list_reports(ReportFilter(status=["open"], include_duplicates=True)).items
    assert {r.id for r in with_dups} == {first.report.id, second.report.id}


def test_a_storm_of_duplicates_leaves_one_occurrence_event_per_interval(db, settings):
    first = service.create_report(crash(), "svc").report
    for i in range(20):
        service.create_report(crash(line=i + 11), "svc")
    assert len(events(first, "occurrence")) == 1
    assert BugReportDedup.get(BugReportDedup.canonical == first.id).occurrences == 21
    later = utcnow() + timedelta(seconds=settings.occurrence_event_seconds + 1)
    service.create_report(crash(line=5), "svc", now=later)
    occurrence = events(first, "occurrence")
    assert len(occurrence) == 2 and occurrence[-1].data["occurrences"] == 22


def test_a_resolved_crash_seen_again_reopens_as_a_regression(db, settings):
    first = service.create_report(crash(), "svc").report
    service.resolve(first.id, "agent-1", commits=["c0ffee1"])
    later = utcnow() + settings.dedup_window + timedelta(hours=1)
    again = service.create_report(crash(line=50, created_at=later.isoformat()), "svc", now=later)
    assert again.regressed and again.report.duplicate_of_id == first.id
    reopened = BugReport.get_by_id(first.id)
    assert reopened.status == "triaged" and reopened.resolved_at is None
    (regressed,) = events(first, "regressed")
    assert f"#{again.report.number}" in regressed.body


def test_a_wont_fix_canonical_stays_closed_and_only_counts(db):
    first = service.create_report(crash(), "svc").report
    service.move(first.id, "closed", "human", version=first.version, close_reason="wont_fix")
    again = service.create_report(crash(line=70), "svc")
    assert again.deduplicated and not again.regressed
    assert BugReport.get_by_id(first.id).status == "closed"
    assert BugReportDedup.get(BugReportDedup.canonical == first.id).occurrences == 2


def test_regressions_honour_the_release_that_carries_the_fix(db):
    t0 = utcnow() - timedelta(days=10)
    old, fix, newer = "1" * 40, "2" * 40, "3" * 40
    releases.add_release(old, version="1.0", deployed_at=t0)
    first = service.create_report(crash(release_sha=old, created_at=(t0 + timedelta(hours=1)).isoformat()), "svc")
    service.resolve(first.report.id, "agent-1", now=t0 + timedelta(days=1))
    releases.add_release(fix, version="1.1", deployed_at=t0 + timedelta(days=2))
    releases.add_release(newer, version="1.2", deployed_at=t0 + timedelta(days=5))
    # A host still on the old release: counted, not reopened.
    lagging = service.create_report(crash(release_sha=old, created_at=(t0 + timedelta(days=3)).isoformat()), "svc")
    assert lagging.deduplicated and not lagging.regressed
    assert BugReport.get_by_id(first.report.id).status == "resolved"
    # From a release at or after the fix: the fix did not hold.
    broken = service.create_report(crash(release_sha=newer, created_at=(t0 + timedelta(days=6)).isoformat()), "svc")
    assert broken.regressed
    (regressed,) = events(first.report, "regressed")
    assert f"the fix in release {fix} did not hold" in regressed.body
    assert regressed.data["release_sha"] == newer


def test_a_fix_not_yet_deployed_does_not_regress(db):
    t0 = utcnow() - timedelta(days=3)
    releases.add_release("4" * 40, deployed_at=t0)
    first = service.create_report(crash(created_at=(t0 + timedelta(hours=1)).isoformat()), "svc").report
    service.resolve(first.id, "agent-1", now=t0 + timedelta(hours=2))
    again = service.create_report(crash(line=3), "svc")
    assert again.deduplicated and not again.regressed
    assert BugReport.get_by_id(first.id).status == "resolved"


def test_merge_repoints_duplicates_and_counts_in_one_step(db):
    a = service.create_report(crash(), "svc").report
    service.create_report(crash(line=20), "svc")
    b = service.create_report({"title": "checkout page shows a blank total", "severity": "low"}, "human").report
    b_dup = service.create_report({"title": "checkout page shows a blank total!", "severity": "low"}, "human")
    assert b_dup.report.duplicate_of_id == b.id
    target = dedup.merge(b.id, a.id, "triager")
    assert target.id == a.id
    assert BugReport.get_by_id(b.id).duplicate_of_id == a.id
    assert BugReport.get_by_id(b_dup.report.id).duplicate_of_id == a.id
    group = dedup.group_occurrences(BugReport.get_by_id(a.id))
    assert group["occurrences"] == 4
    assert [e.body for e in events(a, "merged")] == [f"#{b.number} merged in"]
    assert [e.body for e in events(b, "merged")] == [f"merged into #{a.number}"]
    # A report merged away keeps answering with the canonical it belongs to.
    merged_again = service.create_report({"title": "checkout page shows a blank total", "severity": "low"}, "x")
    assert merged_again.canonical.id == a.id


def test_a_split_report_becomes_its_own_canonical_and_stays_out(db):
    a = service.create_report(crash(), "svc").report
    dup = service.create_report(crash(line=30), "svc").report
    split = dedup.split(dup.id, "triager")
    assert split.duplicate_of_id is None and split.details["split_from"] == a.number
    later = service.create_report(crash(line=31), "svc")
    assert later.report.duplicate_of_id == a.id  # new occurrences go to the old group
    assert BugReport.get_by_id(dup.id).duplicate_of_id is None  # the split stays split
    with pytest.raises(errors.ValidationError):
        dedup.split(a.id, "triager")


def test_concurrent_creates_of_a_new_fingerprint_make_exactly_one_canonical(db, db_url):
    db.close()
    results, failures = [], []
    barrier = threading.Barrier(8)

    def create(i: int) -> None:
        dbmod.database.connect(reuse_if_open=True)
        try:
            barrier.wait()
            results.append(service.create_report(crash(line=i + 1, key=f"k{i}"), f"svc-{i}"))
        except Exception as exc:
            failures.append(repr(exc))
        finally:
            dbmod.database.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    db.connect(reuse_if_open=True)
    canonicals = BugReport.select().where(BugReport.duplicate_of.is_null())
    assert canonicals.count() == 1
    assert BugReportDedup.select().count() == 1
    assert BugReportDedup.get().occurrences == 8
    assert sum(1 for r in results if not r.deduplicated) == 1
