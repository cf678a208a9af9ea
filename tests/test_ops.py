"""Backups taken during a write storm restore to a consistent database; doctor finds what is wrong."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from bugdesk import db as dbmod
from bugdesk import deferred, ops, service
from bugdesk.models import BugReport, BugReportDedup


def _counts(path: Path) -> tuple[int, int, int]:
    conn = sqlite3.connect(path)
    try:
        reports = conn.execute("SELECT COUNT(*) FROM bug_reports").fetchone()[0]
        created = conn.execute("SELECT COUNT(*) FROM bug_report_events WHERE kind = 'created'").fetchone()[0]
        orphans = conn.execute(
            "SELECT COUNT(*) FROM bug_reports r WHERE NOT EXISTS "
            "(SELECT 1 FROM bug_report_events e WHERE e.report_id = r.id AND e.kind = 'created')"
        ).fetchone()[0]
    finally:
        conn.close()
    return reports, created, orphans


def test_a_backup_during_a_write_storm_restores_to_a_consistent_database(sqlite_db, tmp_path):
    url = sqlite_db.database
    stop = threading.Event()
    written = []

    def storm() -> None:
        dbmod.database.connect(reuse_if_open=True)
        i = 0
        while not stop.is_set():
            i += 1
            service.create_report({"title": f"storm report {chr(97 + i % 26)}{i:x}", "severity": "low"}, "storm")
            written.append(i)
        dbmod.database.close()

    writer = threading.Thread(target=storm)
    writer.start()
    time.sleep(0.5)
    result = ops.backup(url, tmp_path / "backup.db")
    time.sleep(0.3)
    stop.set()
    writer.join(timeout=30)
    reports, created, orphans = _counts(tmp_path / "backup.db")
    assert 0 < reports < len(written) + 1 and reports == result["reports"]
    assert created == reports and orphans == 0  # never half a report: each one comes with its event
    restored = ops.restore(tmp_path / "backup.db", str(tmp_path / "restored.db"))
    assert restored["reports"] == reports
    with dbmod.connected(str(tmp_path / "restored.db")) as database:
        assert all(f.ok for f in ops.doctor(database))
        assert BugReport.select().count() == reports


def test_backup_and_restore_refuse_to_overwrite(sqlite_db, tmp_path):
    (tmp_path / "taken.db").write_text("x")
    with pytest.raises(ops.OpsError):
        ops.backup(sqlite_db.database, tmp_path / "taken.db")
    with pytest.raises(ops.OpsError, match="--force"):
        ops.restore(tmp_path / "taken.db", sqlite_db.database)


def test_doctor_reports_a_dedup_count_that_disagrees(db, make_report):
    report = make_report()
    assert all(f.ok for f in ops.doctor(db))
    BugReportDedup.update(occurrences=5).where(BugReportDedup.canonical == report.id).execute()
    failing = {f.check for f in ops.doctor(db) if not f.ok}
    assert failing == {"dedup counts"}


def test_doctor_accepts_merged_and_split_groups(db):
    from bugdesk.service import dedup

    a = service.create_report({"title": "export stalls at ninety percent"}, "svc").report
    dup = service.create_report({"title": "export stalls at ninety percent"}, "svc").report
    other = service.create_report({"title": "invoice emails never arrive"}, "svc").report
    dedup.split(dup.id, "human")
    dedup.merge(other.id, a.id, "human")
    assert [f.check for f in ops.doctor(db) if not f.ok] == []


def test_doctor_lists_indexes_a_running_bulk_load_holds_and_clears_once_they_are_back(sqlite_db):
    deferred.defer(sqlite_db)  # this process is the running load
    finding = next(f for f in ops.doctor(sqlite_db) if f.check == "deferred indexes")
    assert finding.ok and "still running" in finding.detail and finding.examples
    deferred.restore(sqlite_db)
    assert all(f.ok for f in ops.doctor(sqlite_db))
