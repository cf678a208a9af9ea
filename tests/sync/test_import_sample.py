"""The sample store imported into SQLite and PostgreSQL: every MANIFEST line's outcome, a no-op re-run,
and a run killed with SIGKILL and resumed that ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bugdesk import db as dbmod
from bugdesk.config import Settings
from bugdesk.models_sync import SYNC_MODELS
from sync.importer import ImportOptions, run_import


def _sample_dir() -> Path:
    configured = os.environ.get("BUGDESK_LEGACY_SAMPLE")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared/legacy/sample"


SAMPLE = _sample_dir()
pytestmark = pytest.mark.skipif(
    not (SAMPLE / "MANIFEST.jsonl").is_file(), reason=f"legacy sample store not found at {SAMPLE}"
)
STORE = SAMPLE / "reports"
# The manifest's paths are relative to the folder holding it; the import's to the store.
PREFIX = "reports/"


@pytest.fixture
def sync_url(db_url: str) -> str:
    """``db_url`` with the sync tables emptied too (conftest truncates the core tables only)."""
    if db_url.startswith("postgres"):
        database = dbmod.open_database(db_url)
        database.connect()
        tables = ", ".join(f'"{m._meta.table_name}"' for m in SYNC_MODELS)
        database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        database.close()
    return db_url


def _import(url: str, **options: Any):
    with dbmod.connected(url):
        return run_import(STORE, settings=Settings(), options=ImportOptions(jobs=0, **options))


def _rows(url: str, sql: str) -> list[tuple]:
    # Looking must not rebuild what a killed bulk load set aside: the resumed import takes that over.
    with dbmod.connected(url, restore_deferred=False) as database:
        return [tuple(row) for row in database.execute_sql(sql).fetchall()]


def _manifest() -> list[dict[str, Any]]:
    with open(SAMPLE / "MANIFEST.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _iso(value: Any) -> str:
    # SQLite returns the stored text, PostgreSQL an aware datetime.
    if isinstance(value, str):
        return value[:10] + "T" + value[11:19] + "Z"
    return value.astimezone(__import__("datetime").UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_every_manifest_line_has_its_outcome_and_a_second_run_changes_nothing(sync_url: str) -> None:
    first = _import(sync_url)
    assert first.exit_code == 1  # the sample has quarantined files
    entries = {
        (PREFIX + path, line, index): (outcome, reason, legacy_id)
        for path, line, index, outcome, reason, legacy_id in _rows(
            sync_url,
            "SELECT f.path, e.line, e.item_index, e.outcome, e.reason, e.legacy_id "
            "FROM sync_entries e JOIN sync_files f ON f.id = e.file_id",
        )
    }
    reports = {
        legacy_id: (created_at, severity, status, target)
        for legacy_id, created_at, severity, status, target in _rows(
            sync_url,
            "SELECT r.legacy_id, r.created_at, r.severity, r.status, t.legacy_id "
            "FROM bug_reports r LEFT JOIN bug_reports t ON t.id = r.duplicate_of_id",
        )
    }
    mismatches: list[str] = []
    imported_ids: list[str] = []
    for want in _manifest():
        key = (want["path"], want.get("line"), want.get("index"))
        got = entries.pop(key, None)
        if got is None:
            mismatches.append(f"{key}: no entry recorded")
            continue
        outcome, reason, legacy_id = got
        if want["expected"] == "quarantine":
            if outcome not in ("quarantined", "stale", "skipped") or reason != want["reason"]:
                mismatches.append(f"{key}: expected quarantine {want['reason']}, got {outcome} {reason}")
            continue
        if outcome != "imported" or legacy_id != want["legacy_id"]:
            mismatches.append(f"{key}: expected import of {want['legacy_id']}, got {outcome} {reason} {legacy_id}")
            continue
        imported_ids.append(want["legacy_id"])
        created_at, severity, status, target = reports[want["legacy_id"]]
        if want["created_at"] is not None and _iso(created_at) != want["created_at"]:
            mismatches.append(f"{key}: created_at {_iso(created_at)} != {want['created_at']}")
        for name, value in (("severity", severity), ("status", status)):
            if want[name] is not None and value != want[name]:
                mismatches.append(f"{key}: {name} {value} != {want[name]}")
        if want["duplicate_of"] is not None and target != want["duplicate_of"]:
            mismatches.append(f"{key}: duplicate_of {target} != {want['duplicate_of']}")
    mismatches += [f"{key}: recorded but not in the manifest" for key in entries]
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:30])
    # Imported once each: one report per import line, and nothing else became a report.
    assert len(imported_ids) == len(set(imported_ids)) == len(reports) == first.result.created
    assert _rows(sync_url, "SELECT COUNT(*) FROM bug_report_events WHERE kind = 'imported'") == [(len(reports),)]
    assert _rows(sync_url, "SELECT SUM(occurrences) FROM bug_report_dedup") == [(len(reports),)]

    before = _state(sync_url)
    second = _import(sync_url)
    assert (second.result.created, second.result.updated, second.result.stale) == (0, 0, 0)
    assert second.files_read == 0 and second.files_unchanged == first.files_seen
    assert _state(sync_url) == before


def _state(url: str) -> dict[str, Any]:
    """What an import leaves behind, by content: ids, numbers and wall-clock times left out."""
    return {
        "reports": sorted(
            _rows(
                url,
                "SELECT r.legacy_id, r.title, r.severity, r.status, r.close_reason, r.created_at, r.updated_at, "
                "r.resolved_at, r.sla_due_at, r.fingerprint, r.version, t.legacy_id "
                "FROM bug_reports r LEFT JOIN bug_reports t ON t.id = r.duplicate_of_id",
            ),
            key=str,
        ),
        "events": Counter(
            _rows(
                url,
                "SELECT r.legacy_id, e.kind, e.actor, e.body, CASE WHEN e.actor = 'system:sync' THEN NULL "
                "ELSE e.created_at END FROM bug_report_events e JOIN bug_reports r ON r.id = e.report_id",
            )
        ),
        "dedup": sorted(
            _rows(
                url,
                "SELECT d.fingerprint, r.legacy_id, d.occurrences, d.first_seen_at, d.last_seen_at "
                "FROM bug_report_dedup d JOIN bug_reports r ON r.id = d.canonical_id",
            ),
            key=str,
        ),
        "entries": sorted(
            _rows(
                url,
                "SELECT f.path, e.position, e.outcome, e.reason, e.message, e.legacy_id, e.content_hash, r.legacy_id "
                "FROM sync_entries e JOIN sync_files f ON f.id = e.file_id "
                "LEFT JOIN bug_reports r ON r.id = e.report_id",
            ),
            key=str,
        ),
        "files": sorted(
            _rows(
                url,
                "SELECT path, kind, size, sha256, consumed_bytes, consumed_lines, entries, status FROM sync_files",
            ),
            key=str,
        ),
        "links": sorted(
            _rows(
                url,
                "SELECT r.legacy_id, s.copy_key, s.link_target, s.link_state, s.report_version "
                "FROM sync_reports s JOIN bug_reports r ON r.id = s.report_id",
            ),
            key=str,
        ),
    }


def _cli(url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "BUGDESK_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bugdesk", "sync", "import", str(STORE), "--no-progress", "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _schema_objects(url: str) -> set[tuple]:
    return set(_rows(url, "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger', 'table')"))


def _migrated_url(url: str) -> str:
    fresh = url.replace(".db", "-fresh.db")
    with dbmod.connected(fresh):
        pass
    return fresh


def _count(url: str) -> int:
    try:
        return _rows(url, "SELECT COUNT(*) FROM bug_reports")[0][0]
    except Exception:  # the schema may still be being created by the child
        return 0


def _truncate(url: str) -> None:
    tables = ["bug_report_events", "bug_report_dedup", "sync_reports", "sync_entries", "sync_files", "sync_runs"]
    with dbmod.connected(url) as database:
        if url.startswith("postgres"):
            database.execute_sql("TRUNCATE bug_reports, " + ", ".join(tables) + ", sync_roots CASCADE")
        else:
            with database.atomic():
                for table in [*tables, "bug_reports", "sync_roots"]:
                    database.execute_sql(f"DELETE FROM {table}")


def test_an_import_killed_mid_run_and_run_again_ends_like_an_uninterrupted_one(sync_url: str) -> None:
    _import(sync_url)
    clean = _state(sync_url)
    total = len(clean["reports"])
    _truncate(sync_url)

    child = _cli(sync_url, "--batch-size", "200")
    deadline = time.monotonic() + 60
    while _count(sync_url) < 400 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    killed_at = _count(sync_url)
    assert 0 < killed_at < total, f"the kill should land mid-import ({killed_at} of {total} reports)"

    resumed = _cli(sync_url, "--batch-size", "200")
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 1, err.decode()
    summary = json.loads(out)
    assert summary["files"]["unchanged"] > 0  # the committed batches were not read again
    assert _state(sync_url) == clean
    runs = _rows(sync_url, "SELECT status FROM sync_runs ORDER BY id")
    assert [r[0] for r in runs] == ["interrupted", "completed"]
    if sync_url.startswith("sqlite"):
        # Both runs loaded with the indexes set aside (the table was empty, then the killed load's were
        # taken over); the resumed run built every one of them again.
        assert summary["bulk"] is True
        assert _rows(sync_url, "SELECT COUNT(*) FROM deferred_ddl") == [(0,)]
        assert _schema_objects(sync_url) == _schema_objects(_migrated_url(sync_url))
