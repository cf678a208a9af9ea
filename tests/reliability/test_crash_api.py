"""SIGKILL the API server while 16 clients file reports, on SQLite and PostgreSQL, and restart it.

A 2xx is sent only after the create transaction committed, so every acknowledged
report must survive the kill with its `created` event, nothing may be half-written
(a report without its event, a dedup count that disagrees with its group), and a
client retrying its unanswered submissions with their Idempotency-Keys must get
each stored exactly once. benchmarks/crash_campaign.py runs the same cycle many times.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from crashkit import ServeProcess, audit, bug_catalogue, kill_cycle, report_body

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent
from bugdesk.service import tokens

CYCLES = 2


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_reports_acknowledged_before_a_sigkill_survive_it_whole_and_retries_do_not_duplicate(db_url, tmp_path):
    with dbmod.connected(db_url):
        _, secret = tokens.create_token("crash-ingest", "ingest")
    bugs = bug_catalogue(8, seed=11)  # 8 bugs, hundreds of reports: every group grows while the server dies
    server = ServeProcess(db_url, tmp_path)
    sent: set[str] = set()
    cycles = []
    server.start()
    try:
        for n in range(CYCLES):
            cycle = kill_cycle(server, secret, bugs, sent, clients=16, kill_after=1.0 + 0.4 * n, seed=n)
            cycles.append(cycle)
            assert cycle.acknowledged > 0, "the kill landed before any report was acknowledged"
            assert cycle.in_flight > 0, "the kill landed after the load (nothing was in flight)"
            assert cycle.refused == [], "the server refused submissions before the kill"
            assert cycle.lost == [], f"acknowledged reports missing after the restart (cycle {n})"
            assert cycle.audit_before.without_created == [], "reports stored without their created event"
            assert cycle.audit_before.created_events == cycle.audit_before.reports
            assert cycle.audit_before.dedup_off == [], "dedup counts disagree with their groups after the kill"
            assert cycle.audit_before.doctor_failures == []
            assert cycle.retry_failures == [], "retrying an unanswered submission with its key failed"
            assert cycle.duplicates == 0 and cycle.missing_after_retry == 0
            assert cycle.audit_after.dedup_off == [] and cycle.audit_after.without_created == []
    finally:
        server.stop()
    # Groups must have formed, or the dedup checks above proved nothing.
    final = cycles[-1].audit_after
    assert final.reports == len(sent) > len(bugs)
    doctor = subprocess.run(
        [sys.executable, "-m", "bugdesk", "doctor"],
        cwd=tmp_path,
        env={**os.environ, "BUGDESK_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_the_audit_notices_a_report_without_its_created_event_and_a_dedup_count_off(tmp_path):
    # The crash test is only as good as its audit: half-written state made by hand must show up in it.
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    bug = bug_catalogue(1, seed=3)[0]
    rng = random.Random(5)
    with dbmod.connected(url):
        first = service.create_report(report_body(bug, rng), "tester").report
        second = service.create_report(report_body(bug, rng), "tester").report
    clean = audit(url)
    assert (clean.reports, clean.without_created, clean.dedup_off, clean.doctor_failures) == (2, [], [], [])
    assert second.duplicate_of_id == first.id
    with dbmod.connected(url):
        BugReportEvent.delete().where(BugReportEvent.report == second.id, BugReportEvent.kind == "created").execute()
        BugReportDedup.update(occurrences=BugReportDedup.occurrences + 1).execute()
        BugReport.update(duplicate_of=None).where(BugReport.id == second.id).execute()
    broken = audit(url)
    assert broken.without_created == [second.number]
    assert broken.created_events == 1
    assert broken.dedup_off[0]["occurrences"] == 3 and broken.dedup_off[0]["reports"] == 2
    assert broken.dedup_off[0]["duplicates"] == 0
    assert {f.split(":")[0] for f in broken.doctor_failures} == {"dedup counts", "report origins"}
    assert broken.half_written >= 3
