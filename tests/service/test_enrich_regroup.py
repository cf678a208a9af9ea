"""The enrichment job and the regroup replay."""

from __future__ import annotations

from datetime import timedelta

from bugdesk import fingerprint, service
from bugdesk.clock import utcnow
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent
from bugdesk.service import dedup, enrich, regroup, releases
from bugdesk.service._base import guarded_update

TRACE = """Traceback (most recent call last):
  File "/srv/app/releases/abc123/shop/billing/invoices.py", line 41, in render_invoice
    total = compute(lines)
  File "/srv/app/releases/abc123/shop/billing/tax.py", line 88, in compute
    rate = RATES[country]
KeyError: 'XX'"""


def test_enrichment_fills_release_component_hints_and_is_idempotent(db):
    t0 = utcnow() - timedelta(days=2)
    releases.add_release("a" * 40, version="3.1.0", deployed_at=t0)
    releases.add_release("b" * 40, version="3.2.0", deployed_at=t0 + timedelta(days=1))
    older = service.create_report(
        {"title": "invoice crash", "stacktrace": TRACE, "created_at": (t0 + timedelta(hours=3)).isoformat()}, "svc"
    ).report
    versioned = service.create_report({"title": "tax page blank", "release": "3.2.0"}, "svc").report
    stats = enrich.enrich()
    first = BugReport.get_by_id(older.id)
    assert first.release_sha == "a" * 40  # the release live when it was created
    assert first.component == "billing"
    assert first.details["repo_path_hints"][0].endswith("billing/tax.py:88")
    assert BugReport.get_by_id(versioned.id).release_sha == "b" * 40  # version mapped via the timeline
    (event,) = BugReportEvent.select().where(BugReportEvent.report == older.id, BugReportEvent.kind == "enriched")
    assert "release_sha" in event.body and "component" in event.body
    assert stats.enriched == 2
    again = enrich.enrich()
    assert again.enriched == 0 and again.scanned == 2
    assert BugReportEvent.select().where(BugReportEvent.kind == "enriched").count() == 2


def test_regroup_dry_run_shows_changes_and_apply_makes_them(db):
    a = service.create_report({"title": "search times out", "component": "search"}, "svc").report
    b = service.create_report({"title": "search times out", "component": "search"}, "svc").report
    assert b.duplicate_of_id == a.id
    lone = service.create_report({"title": "avatar upload fails", "component": "uploads"}, "svc").report
    # Pretend B was once grouped apart (e.g. by an older algorithm): a regroup should fold it back.
    guarded_update(BugReport.get_by_id(b.id), None, utcnow(), duplicate_of=None, fingerprint="old")
    plan = regroup.plan_regroup()
    assert plan.summary()["groups_that_merge"] == 1
    assert plan.merges[0]["from"] == sorted([a.number, b.number])
    assert BugReport.get_by_id(b.id).duplicate_of_id is None  # a plan changes nothing
    moved = regroup.apply_regroup(plan)
    assert moved == 1
    assert BugReport.get_by_id(b.id).duplicate_of_id == a.id
    assert BugReport.get_by_id(lone.id).duplicate_of_id is None
    row = BugReportDedup.get(BugReportDedup.canonical == a.id)
    assert row.occurrences == 2
    assert regroup.plan_regroup().summary()["reports_that_move"] == 0  # a second run has nothing to do


def test_regroup_keeps_manual_splits_and_merges(db):
    a = service.create_report({"title": "cart total wrong"}, "svc").report
    dup = service.create_report({"title": "cart total wrong"}, "svc").report
    other = service.create_report({"title": "coupon ignored at checkout"}, "svc").report
    dedup.split(dup.id, "human")
    dedup.merge(other.id, a.id, "human")
    plan = regroup.plan_regroup(fingerprint.CURRENT)
    assert plan.moves == {}
