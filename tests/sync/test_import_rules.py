"""The import rules on small stores built in each test, on SQLite and PostgreSQL: copies of one id,
changed files, grouping and legacy links, half-written files, appended JSON lines, dry runs."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peewee import DataError

from bugdesk import db as dbmod
from bugdesk.config import Settings
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent
from bugdesk.models_sync import SYNC_MODELS, SyncEntry, SyncFile, SyncReport
from bugdesk.service import create_report, imports, move
from sync.importer import ImportOptions, ImportSummary, run_import

TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/releases/abc/app/billing/views.py", line 12, in show\n'
    "    return load(invoice_id)\n"
    '  File "/srv/app/releases/abc/app/billing/store.py", line 40, in load\n'
    "    row = rows[key]\n"
    "KeyError: 'card_id'"
)
OTHER_TRACE = TRACE.replace("store.py", "cache.py").replace("in load", "in fetch").replace("KeyError", "ValueError")
OLD = time.time() - 3600  # an mtime well past the settle time


@pytest.fixture
def db(db_url: str) -> Iterator[Any]:
    """The models bound to an empty database, sync tables included."""
    with dbmod.connected(db_url) as database:
        if db_url.startswith("postgres"):
            tables = ", ".join(f'"{m._meta.table_name}"' for m in SYNC_MODELS)
            database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        yield database


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An empty legacy store folder (beside, not around, the SQLite database of ``db_url``)."""
    path = tmp_path / "store"
    path.mkdir()
    return path


def gen3(legacy_id: str, **changes: Any) -> dict[str, Any]:
    obj = {
        "schema": "bugreport/3",
        "id": legacy_id,
        "title": f"Crash {legacy_id}",
        "description": "Automated report.",
        "severity": "high",
        "category": "crash",
        "status": "new",
        "source": "agent",
        "reporter_id": "agent:sentinel-2",
        "assignee_id": None,
        "trace_id": None,
        "request_id": None,
        "release_sha": None,
        "duplicate_of": None,
        "created_at": "2025-03-01T12:00:00+00:00",
        "updated_at": "2025-03-01T12:00:00+00:00",
        "resolved_at": None,
        "sla_due_at": None,
        "resolution": None,
        "events": [],
        "stacktrace": TRACE,
        "component": "billing",
        "route": "/api/invoices/{invoice_id}",
    }
    obj.update(changes)
    return obj


def note(at: str, text: str) -> dict[str, Any]:
    return {"type": "note", "at": at, "actor": "agent:fixer-1", "text": text}


def write(root: Path, name: str, obj: Any, *, mtime: float | None = OLD) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def run(root: Path, **options: Any) -> ImportSummary:
    return run_import(root, settings=Settings(), options=ImportOptions(jobs=0, **options))


def report(legacy_id: str) -> BugReport:
    return BugReport.get(BugReport.legacy_id == legacy_id)


def events(legacy_id: str, kind: str | None = None) -> list[BugReportEvent]:
    query = BugReportEvent.select().where(BugReportEvent.report == report(legacy_id).id)
    if kind is not None:
        query = query.where(BugReportEvent.kind == kind)
    return list(query.order_by(BugReportEvent.id))


def entry(path: str, position: int = 0) -> SyncEntry:
    return SyncEntry.select().join(SyncFile).where((SyncFile.path == path) & (SyncEntry.position == position)).get()


# --- copies of one legacy id ----------------------------------------------------------------


@pytest.mark.parametrize("newer_first", [True, False])
def test_the_newer_copy_wins_whatever_the_order_they_are_met_in(db, store: Path, newer_first: bool) -> None:
    old = gen3("A", events=[note("2025-03-01T13:00:00Z", "looking")])
    new = gen3("A", events=[note("2025-03-01T13:00:00Z", "looking"), note("2025-03-02T09:00:00Z", "fixed")])
    new["status"] = "resolved"
    # "A (1).json" sorts before "A.json": either copy can be met first.
    write(store, "A (1).json", new if newer_first else old)
    write(store, "A.json", old if newer_first else new)
    summary = run(store)
    assert summary.result.created == 1 and summary.result.stale == 1
    assert report("A").status == "resolved"
    assert [e.body for e in events("A", "note")] == ["looking", "fixed"]
    stale = entry("A.json" if newer_first else "A (1).json")
    assert stale.outcome == "stale" and stale.reason == "stale_duplicate"
    assert ("A (1).json" if newer_first else "A.json") in stale.message
    # Met first, the older copy was imported and then overwritten, with an event naming the change.
    assert len(events("A", "updated")) == (0 if newer_first else 1)


def test_a_changed_file_updates_its_report_once_and_an_older_copy_never_overwrites_it(db, store: Path) -> None:
    write(store, "A.json", gen3("A"))
    run(store)
    write(store, "A.json", gen3("A", status="triaged", events=[note("2025-03-01T13:00:00Z", "triaged it")]))
    summary = run(store)
    assert summary.result.updated == 1
    (updated,) = events("A", "updated")
    assert "status" in updated.body and updated.data["changed"]["status"] == ["new", "triaged"]
    assert updated.data["events_added"] == 1
    assert run(store).result.updated == 0 and len(events("A", "updated")) == 1
    # An older copy turns up later (a restored backup): recorded as stale, the report keeps its state.
    write(store, "backup/A.json.bak", gen3("A"))
    summary = run(store)
    assert summary.result.stale == 1 and report("A").status == "triaged"
    assert entry("backup/A.json.bak").outcome == "stale"


def test_a_report_changed_in_bugdesk_is_not_overwritten_by_a_changed_legacy_file(db, store: Path) -> None:
    write(store, "A.json", gen3("A"))
    run(store)
    move(report("A").id, "in_progress", "agent:fixer-9", version=None)
    write(store, "A.json", gen3("A", status="closed", events=[note("2025-03-01T13:00:00Z", "won't fix")]))
    summary = run(store)
    assert summary.result.conflicts == 1
    assert report("A").status == "in_progress"
    (updated,) = events("A", "updated")
    assert updated.data["conflict"] is True and updated.data["changed"]["status"] == ["in_progress", "closed"]
    assert [e.body for e in events("A", "note")] == ["won't fix"]  # history is still added


def test_a_legacy_id_already_used_by_another_report_is_quarantined_as_a_conflict(db, store: Path) -> None:
    create_report({"title": "filed through the API", "legacy_id": "A"}, "api")
    write(store, "A.json", gen3("A"))
    summary = run(store)
    assert summary.result.quarantined == {"conflict": 1} and summary.exit_code == 1
    assert report("A").title == "filed through the API"


# --- grouping and legacy links --------------------------------------------------------------


def test_reports_with_one_fingerprint_are_grouped_under_the_first_and_counted(db, store: Path) -> None:
    write(store, "1.json", gen3("A", created_at="2025-03-01T10:00:00Z", status="resolved"))
    write(store, "2.json", gen3("B", created_at="2025-03-05T10:00:00Z"))
    write(store, "3.json", gen3("C", created_at="2025-02-01T10:00:00Z"))
    summary = run(store)
    assert summary.result.grouped == 2
    assert report("B").duplicate_of_id == report("A").id == report("C").duplicate_of_id
    (group,) = BugReportDedup.select()
    assert group.occurrences == 3 and group.canonical_id == report("A").id
    assert (group.first_seen_at.day, group.last_seen_at.day) == (1, 5)
    # Import never reopens: the resolved canonical stays resolved and no regression is recorded.
    assert report("A").status == "resolved"
    assert not BugReportEvent.select().where(BugReportEvent.kind.in_(["regressed", "occurrence"])).exists()


def test_an_explicit_legacy_link_wins_even_when_its_target_comes_later(db, store: Path) -> None:
    write(store, "1.json", gen3("A"))
    write(store, "2.json", gen3("B", duplicate_of="Z", status="closed"))  # B is grouped with A by fingerprint
    write(store, "3.json", gen3("Z", stacktrace=OTHER_TRACE))
    summary = run(store)
    assert summary.links.linked == 1
    assert report("B").duplicate_of_id == report("Z").id
    assert "linked once all reports were in" in events("B", "updated")[0].body
    assert SyncReport.get(SyncReport.report == report("B").id).link_state == "linked"


def test_an_explicit_link_to_a_report_grouped_under_it_turns_the_grouping_around(db, store: Path) -> None:
    # X comes first in the walk and opens the group; Y joins it; but X says it is a duplicate of Y.
    write(store, "1.json", gen3("X", duplicate_of="Y", status="closed"))
    write(store, "2.json", gen3("Y"))
    run(store)
    assert report("X").duplicate_of_id == report("Y").id
    assert report("Y").duplicate_of_id is None


def test_a_link_to_an_id_that_exists_nowhere_is_dropped_with_a_warning(db, store: Path) -> None:
    write(store, "1.json", gen3("A", duplicate_of="NOWHERE", stacktrace=OTHER_TRACE))
    summary = run(store)
    assert summary.exit_code == 0 and summary.links.dangling == 1
    assert report("A").duplicate_of_id is None
    assert any("NOWHERE" in w for w in entry("1.json").warnings)
    assert SyncReport.get(SyncReport.report == report("A").id).link_state == "dangling"
    # The target arrives later (the watch during the cut-over): the link is made then.
    write(store, "2.json", gen3("NOWHERE"))
    assert run(store).links.linked == 1
    assert report("A").duplicate_of_id == report("NOWHERE").id


# --- bad and half-written files -------------------------------------------------------------


def test_bad_entries_are_recorded_with_a_reason_and_never_stop_the_run(db, store: Path) -> None:
    write(store, "a.json", '{"schema": "bugreport/3", "id": "T", "title": "cut sh')
    write(store, "b.json", gen3("NT", title="  "))
    write(store, "c.json", {"kind": "report", "title": "x", "severity": "high"})
    write(store, "notes.md", "# notes")
    write(store, "d.json", gen3("OK"))
    summary = run(store)
    assert summary.result.created == 1 and summary.result.skipped == 1
    assert summary.result.quarantined == {"invalid_json": 1, "missing_title": 1, "unknown_format": 1}
    listed = {p["path"]: p for p in imports.problems()}
    assert listed["a.json"]["legacy_id"] == "T" and "truncated" in listed["a.json"]["message"]
    assert listed["notes.md"]["outcome"] == "skipped" and listed["notes.md"]["reason"] == "not_a_report"


def test_a_half_written_file_is_pending_until_it_parses_or_settles(db, store: Path) -> None:
    write(store, "a.json", '{"schema": "bugreport/3", "id": "A", "ti', mtime=None)
    summary = run(store, settle_seconds=30)
    assert summary.result.pending == 1 and summary.exit_code == 0 and summary.pending_paths == {"a.json"}
    write(store, "a.json", gen3("A"), mtime=None)
    assert run(store, settle_seconds=30).result.created == 1
    # A file that stays broken past the settle time is quarantined after all.
    write(store, "b.json", "{", mtime=None)
    assert run(store, settle_seconds=30).result.pending == 1
    os.utime(store / "b.json", (OLD, OLD))
    assert run(store, settle_seconds=30).result.quarantined == {"invalid_json": 1}


def test_an_entry_the_database_refuses_is_quarantined_and_the_rest_imported(db, store: Path, monkeypatch) -> None:
    original = imports._Batch._insert

    def refuse(self, path, file_id, item, old):
        if item.report.legacy_id == "BAD":
            raise DataError("value too long for type character varying(255)")
        return original(self, path, file_id, item, old)

    monkeypatch.setattr(imports._Batch, "_insert", refuse)
    for name in ("A", "BAD", "C"):
        write(store, f"{name}.json", gen3(name, stacktrace=None, title=f"problem {name} {uuid.uuid4()}"))
    summary = run(store)
    assert summary.result.created == 2 and summary.result.quarantined == {"db_error": 1}
    assert "value too long" in entry("BAD.json").message


# --- append-only JSON lines -----------------------------------------------------------------


def test_lines_appended_to_an_inbox_are_the_only_ones_read_again(db, store: Path) -> None:
    inbox = store / "inbox.jsonl"
    lines = [json.dumps(gen3(f"L{i}", stacktrace=None, title=f"inbox report {i}")) for i in range(3)]
    write(store, "inbox.jsonl", "\n".join(lines) + "\n")
    assert run(store).result.created == 3
    with open(inbox, "a", encoding="utf-8") as f:
        f.write(json.dumps(gen3("L3", stacktrace=None, title="inbox report 3")) + "\n")
        f.write('{"schema": "bugreport/3", "id": "L4"')  # the writer is still writing this line
    summary = run(store, settle_seconds=30)
    assert (summary.entries_read, summary.result.created, summary.result.unchanged) == (1, 1, 0)
    assert SyncFile.get(SyncFile.path == "inbox.jsonl").status == "pending"
    with open(inbox, "a", encoding="utf-8") as f:
        f.write(', "title": "inbox report 4"}\n')
    summary = run(store, settle_seconds=30)
    # The finished line is read once, as line 5 (it has no creation time, hence the quarantine).
    assert summary.entries_read == 1 and summary.result.quarantined == {"invalid_timestamp": 1}
    assert entry("inbox.jsonl", 5).legacy_id == "L4"


def test_a_rewritten_inbox_is_read_again_from_the_start_without_duplicates(db, store: Path) -> None:
    lines = [json.dumps(gen3(f"L{i}", stacktrace=None, title=f"inbox report {i}")) for i in range(3)]
    write(store, "inbox.jsonl", "\n".join(lines) + "\n")
    run(store)
    lines[0] = json.dumps(gen3("L0", stacktrace=None, title="inbox report 0, edited"))
    write(store, "inbox.jsonl", "\n".join(lines[:2]) + "\n")
    summary = run(store)
    assert (summary.result.updated, summary.result.unchanged, summary.result.created) == (1, 1, 0)
    assert report("L0").title == "inbox report 0, edited"
    assert entry("inbox.jsonl", 3).outcome == "removed"


# --- dry run --------------------------------------------------------------------------------


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(db, store: Path) -> None:
    write(store, "A.json", gen3("A"))
    write(store, "B.json", "{,}")
    summary = run(store, dry_run=True)
    assert summary.dry_run and summary.result.created == 1 and summary.result.quarantined == {"invalid_json": 1}
    assert summary.exit_code == 1
    assert BugReport.select().count() == 0 and SyncFile.select().count() == 0
    assert run(store).result.created == 1


def test_a_verifying_rerun_reads_every_file_again_and_writes_nothing(db, store: Path) -> None:
    write(store, "a.json", gen3("A"))
    write(store, "inbox.jsonl", json.dumps(gen3("L", stacktrace=None, title="line")) + "\n")
    run(store)
    files = [(f.path, f.updated_at, f.sha256) for f in SyncFile.select().order_by(SyncFile.path)]
    events = BugReportEvent.select().count()
    summary = run(store, verify=True)
    assert summary.files_read == 2 and summary.result.unchanged == 2
    assert (summary.result.created, summary.result.updated) == (0, 0)
    assert [(f.path, f.updated_at, f.sha256) for f in SyncFile.select().order_by(SyncFile.path)] == files
    assert BugReportEvent.select().count() == events
