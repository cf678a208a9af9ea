"""Tests for sync.mapping and sync.timeparse, plus a check of the whole sample store's manifest."""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sync.mapping import (
    INVALID_TIMESTAMP,
    LegacyEvent,
    Record,
    freshness,
    map_entry,
    normalise_severity,
    normalise_status,
    resolve_duplicates,
    route_key,
    route_template,
    unlink_dangling_duplicates,
)
from sync.reader import MISSING_TITLE, STALE_DUPLICATE, Quarantine, iter_entries
from sync.timeparse import TimestampError, parse_timestamp
from sync.tracebacks import exception_of, find_traceback

NOW = datetime(2025, 10, 31, tzinfo=UTC)

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/releases/abc/app/billing/views.py", line 12, in show\n'
    "    return load(invoice_id)\n"
    "           ^^^^^^^^^^^^^^^^\n"
    '  File "/srv/app/releases/abc/app/billing/store.py", line 40, in load\n'
    "    row = rows[key]\n"
    "          ~~~~^^^^^\n"
    "KeyError: 'card_id'"
)
CHAINED = (
    "Traceback (most recent call last):\n"
    '  File "/x/lib/driver.py", line 1, in execute\n'
    "    cursor.execute(sql)\n"
    "psycopg2.errors.UniqueViolation: duplicate key\n"
    "\n"
    "The above exception was the direct cause of the following exception:\n"
    "\n"
    "Traceback (most recent call last):\n"
    '  File "/srv/app/orders.py", line 9, in save\n'
    "    db.session.commit()\n"
    "sqlalchemy.exc.IntegrityError: (psycopg2.errors.UniqueViolation) duplicate key\n"
    "DETAIL:  Key (email)=(a@b.c) already exists.\n"
    "\n"
    "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)


def gen1(**changes: Any) -> dict[str, Any]:
    obj = {
        "id": "BR-000042",
        "title": "Invoice page crashes",
        "body": "Open any invoice.",
        "level": "high",
        "reported_by": "user:42",
        "created": "2023-05-01 10:22:01",
        "status": "open",
        "traceback": TRACEBACK,
        "component": "billing",
        "url": "/api/invoices/123?page=2",
    }
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not ...}


def gen2(**changes: Any) -> dict[str, Any]:
    obj = {
        "version": 2,
        "report_id": "2b8e8f4e-1c53-4a43-9a8e-0c1b6f0e0002",
        "summary": "KeyError in charge()",
        "description": "Seen in prod.",
        "severity": "P1",
        "category": "crash",
        "source": "agent",
        "reporter": {"id": "fixer-3", "kind": "agent"},
        "assignee": "agent:fixer-3",
        "created_at": "2024-06-01T10:22:01Z",
        "updated_at": "2024-06-02T08:00:00.250000+00:00",
        "status": "in-progress",
        "telemetry": {
            "trace_id": "a" * 32,
            "request_id": "req_0123456789abcdef",
            "release": "2.14.1",
        },
        "context": {
            "route": "/api/invoices/<int:invoice_id>",
            "component": "payments",
            "env": "prod",
        },
        "exception": {"type": "KeyError", "message": "'card_id'"},
        "stack": [{"file": "app/payments/charge.py", "line": 88, "function": "charge", "module": "m"}],
        "notes": [{"at": "2024-06-01T11:00:00Z", "by": "agent:fixer-3", "text": "Looking."}],
    }
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not ...}


def gen3(**changes: Any) -> dict[str, Any]:
    obj = {
        "schema": "bugreport/3",
        "id": "9d1e2c3b-4a5f-4e6d-8c7b-000000000003",
        "title": "Crash in app.orders.save: IntegrityError",
        "description": "Automated report.",
        "severity": "critical",
        "category": "crash",
        "status": "in_progress",
        "source": "agent",
        "reporter_id": "agent:sentinel-2",
        "assignee_id": "agent:fixer-7",
        "trace_id": None,
        "request_id": "01J0000000000000000000000",
        "release_sha": "f" * 40,
        "duplicate_of": None,
        "created_at": "2025-03-01T12:22:01+01:00",
        "updated_at": 1740831721000,
        "resolved_at": None,
        "sla_due_at": "2025-03-01T15:22:01+01:00",
        "resolution": None,
        "events": [
            {"type": "claimed", "at": "2025-03-01T12:30:00+01:00", "actor": "agent:fixer-7"},
            {
                "type": "status_changed",
                "at": "2025-03-01T12:30:01+01:00",
                "actor": "agent:fixer-7",
                "from": "new",
                "to": "in_progress",
            },
            {
                "type": "note",
                "at": "2025-03-01T13:00:00Z",
                "actor": "agent:fixer-7",
                "text": "On it.",
            },
            {"type": "enriched", "at": "2025-03-01T13:05:00Z", "actor": "system:x", "field": "k"},
        ],
        "stacktrace": CHAINED,
        "component": "orders",
        "route": "POST /orders/{order_id}",
    }
    obj.update(changes)
    return obj


def mapped(tmp_path: Path, obj: Any, name: str = "report.json") -> Record | Quarantine:
    path = tmp_path / name
    path.write_text(json.dumps(obj), encoding="utf-8")
    (entry,) = [e for e in iter_entries(tmp_path) if e.path == name]
    return map_entry(entry, now=NOW)


def record(tmp_path: Path, obj: Any, name: str = "report.json") -> Record:
    result = mapped(tmp_path, obj, name)
    assert isinstance(result, Record), result
    return result


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-05-01 10:22:01", utc(2023, 5, 1, 10, 22, 1)),
        ("2023-05-01T10:22:01", utc(2023, 5, 1, 10, 22, 1)),
        ("2024-06-01T10:22:01Z", utc(2024, 6, 1, 10, 22, 1)),
        ("2024-06-01T10:22:01.123456+00:00", utc(2024, 6, 1, 10, 22, 1, 123456)),
        ("2025-03-01T12:22:01+01:00", utc(2025, 3, 1, 11, 22, 1)),
        ("2025-07-01T12:22:01+02:00", utc(2025, 7, 1, 10, 22, 1)),
        (1740828121000, utc(2025, 3, 1, 11, 22, 1)),
        (1740828121123, utc(2025, 3, 1, 11, 22, 1, 123000)),
        ("1740828121", utc(2025, 3, 1, 11, 22, 1)),
        (1740828121, utc(2025, 3, 1, 11, 22, 1)),
        (4102444800000, utc(2100, 1, 1)),
        ("01/06/2024 10:22", utc(2024, 6, 1, 10, 22)),
        ("13/06/2024 10:22:05", utc(2024, 6, 13, 10, 22, 5)),
        ("06/13/2024 10:22", utc(2024, 6, 13, 10, 22)),
        ("2024-06-01", utc(2024, 6, 1)),
    ],
)
def test_timestamp_shapes(value: object, expected: datetime) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "yesterday", "32/13/2024 10:00", "²", "9999-12-31T23:59:59-05:00", 10**30, True, None, []],
)
def test_bad_timestamps_raise(value: object) -> None:
    with pytest.raises(TimestampError):
        parse_timestamp(value)


# --- vocabularies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("critical", "critical"),
        ("HIGH", "high"),
        (" Medium ", "medium"),
        ("low", "low"),
        ("P0", "critical"),
        ("p1", "high"),
        ("P2", "medium"),
        ("P3", "low"),
        ("P4", "low"),
        ("P5", None),
        ("p-1", None),
        ("urgent", None),
        (1, None),
        (None, None),
    ],
)
def test_severity_table(value: object, expected: str | None) -> None:
    assert normalise_severity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("open", ("new", None)),
        ("Open", ("new", None)),
        ("fixing", ("in_progress", None)),
        ("fixed", ("resolved", None)),
        ("FIXED", ("resolved", None)),
        ("closed", ("closed", None)),
        ("wontfix", ("closed", "wont_fix")),
        ("WONTFIX", ("closed", "wont_fix")),
        ("won't fix", ("closed", "wont_fix")),
        ("new", ("new", None)),
        ("triaged", ("triaged", None)),
        ("in-progress", ("in_progress", None)),
        ("In-Progress", ("in_progress", None)),
        ("IN_PROGRESS", ("in_progress", None)),
        ("awaiting-verification", ("awaiting_verification", None)),
        ("awaiting_verification", ("awaiting_verification", None)),
        ("RESOLVED", ("resolved", None)),
        ("Done", None),
        (None, None),
    ],
)
def test_status_table(value: object, expected: tuple[str, str | None] | None) -> None:
    assert normalise_status(value) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/api/invoices/123", "/api/invoices/{id}"),
        ("/api/invoices/123?page=2#x", "/api/invoices/{id}"),
        ("https://shop.example/api/v2/customers/77/addresses", "/api/v2/customers/{id}/addresses"),
        ("/files/3f2b6a1c-9d7e-4b8a-a1f0-0123456789ab/download", "/files/{id}/download"),
        ("/commits/deadbeef42", "/commits/{id}"),
        ("/unsubscribe/EVX4uyznAzhsgdHit7UnEt", "/unsubscribe/{id}"),
        ("/unsubscribe/mVMQkLNvVNbeFmgTGxcsul", "/unsubscribe/{id}"),
        ("/api/getUserPreferences", "/api/getUserPreferences"),
        ("/api/inventory/SKU-00042-BL", "/api/inventory/{id}"),
        ("/p/blue-mug-7", "/p/{id}"),
        ("/checkout/pay", "/checkout/pay"),
        ("/", "/"),
        (None, None),
    ],
)
def test_route_template(url: str | None, expected: str | None) -> None:
    assert route_template(url) == expected


@pytest.mark.parametrize(
    "route",
    [
        "/api/invoices/<int:invoice_id>",
        "/api/invoices/{invoice_id}",
        "POST /api/invoices/{invoice_id}",
        "/api/invoices/{id}",
    ],
)
def test_route_key_makes_every_generation_comparable(route: str) -> None:
    assert route_key(route) == "/api/invoices/{id}"
    assert route_key(route_template("/api/invoices/42")) == "/api/invoices/{id}"


def test_exception_of_takes_the_last_exception_of_a_chain() -> None:
    exc_type, message = exception_of(CHAINED)
    assert exc_type == "IntegrityError"
    assert message is not None
    assert message.startswith("(psycopg2.errors.UniqueViolation) duplicate key\nDETAIL:")
    assert message.endswith("gkpj)")
    assert exception_of(TRACEBACK) == ("KeyError", "'card_id'")
    assert exception_of(None) == (None, None)


def test_find_traceback_cuts_a_fenced_traceback_out_of_prose() -> None:
    prose = "It fails.\n\nError details:\n```\n[log line] ERROR\n" + TRACEBACK + "\n```\nThanks"
    assert find_traceback(prose) == TRACEBACK
    assert find_traceback("It fails.\n\n" + TRACEBACK) == TRACEBACK
    assert find_traceback("no traceback here") is None


# --- generation 1 ------------------------------------------------------------------------


def test_gen1_maps_names_times_and_traceback(tmp_path: Path) -> None:
    rec = record(tmp_path, gen1())
    assert (rec.legacy_id, rec.generation, rec.title) == ("BR-000042", 1, "Invoice page crashes")
    assert (rec.severity, rec.status, rec.close_reason) == ("high", "new", None)
    assert (rec.source, rec.reporter_id) == ("user", "user:42")
    assert rec.category == "crash"
    assert (rec.exception_type, rec.exception_message) == ("KeyError", "'card_id'")
    assert rec.stacktrace == TRACEBACK and rec.stacktrace_source == "field"
    assert rec.url == "/api/invoices/123?page=2" and rec.route == "/api/invoices/{id}"
    assert rec.component == "billing"
    assert rec.created_at == utc(2023, 5, 1, 10, 22, 1) == rec.updated_at
    assert rec.events == [] and rec.warnings == []


def test_gen1_cron_reporter_is_a_system_account(tmp_path: Path) -> None:
    rec = record(tmp_path, gen1(reported_by="cron", traceback=..., url=...))
    assert (rec.source, rec.reporter_id) == ("system", "system:cron")
    assert rec.category == "other" and rec.route is None and rec.stacktrace is None


def test_gen1_notes_become_events_and_set_updated_at(tmp_path: Path) -> None:
    notes = [
        "2023-05-02 09:14:55 agent:fixer: Fix in review.",
        "2023-05-03T10:00:00 cron: nightly check: still failing",
        "scribbled without a time",
    ]
    rec = record(tmp_path, gen1(notes=notes, status="fixing"))
    assert [(e.kind, e.at, e.actor, e.body) for e in rec.events] == [
        ("note", utc(2023, 5, 2, 9, 14, 55), "agent:fixer", "Fix in review."),
        ("note", utc(2023, 5, 3, 10), "system:cron", "nightly check: still failing"),
        ("note", utc(2023, 5, 3, 10), None, "scribbled without a time"),
    ]
    assert rec.updated_at == utc(2023, 5, 3, 10)
    assert rec.status == "in_progress"
    assert any("notes[2]" in w for w in rec.warnings)


def test_gen1_wontfix_is_closed_as_wont_fix(tmp_path: Path) -> None:
    rec = record(tmp_path, gen1(status="WONTFIX"))
    assert (rec.status, rec.close_reason) == ("closed", "wont_fix")


def test_gen1_closed_with_a_wont_fix_note(tmp_path: Path) -> None:
    notes = ["2023-06-01 10:00:00 user:3: Won't fix: works as designed"]
    rec = record(tmp_path, gen1(status="closed", notes=notes))
    assert (rec.status, rec.close_reason) == ("closed", "wont_fix")


def test_traceback_pasted_into_the_body_is_found(tmp_path: Path) -> None:
    rec = record(tmp_path, gen1(traceback=..., body="Broken!\n\n```\n" + TRACEBACK + "\n```"))
    assert rec.stacktrace == TRACEBACK and rec.stacktrace_source == "description"
    assert rec.exception_type == "KeyError" and rec.category == "crash"


# --- generation 2 ------------------------------------------------------------------------


def test_gen2_maps_reporter_telemetry_context_and_stack(tmp_path: Path) -> None:
    rec = record(tmp_path, gen2())
    assert (rec.title, rec.severity, rec.status) == ("KeyError in charge()", "high", "in_progress")
    assert (rec.source, rec.reporter_id, rec.assignee_id) == (
        "agent",
        "agent:fixer-3",
        "agent:fixer-3",
    )
    assert (rec.trace_id, rec.request_id) == ("a" * 32, "req_0123456789abcdef")
    assert (rec.release, rec.release_sha) == ("2.14.1", None)
    assert (rec.route, rec.component, rec.environment) == (
        "/api/invoices/<int:invoice_id>",
        "payments",
        "prod",
    )
    assert (rec.exception_type, rec.exception_message) == ("KeyError", "'card_id'")
    assert rec.frames == gen2()["stack"] and rec.stacktrace is None
    assert rec.stacktrace_source == "field"
    assert rec.updated_at == utc(2024, 6, 2, 8, 0, 0, 250000)
    assert [(e.kind, e.actor, e.body) for e in rec.events] == [("note", "agent:fixer-3", "Looking.")]


def test_gen2_release_sha_only_for_forty_hex(tmp_path: Path) -> None:
    sha = "AbCdEf0123" * 4
    telemetry = {"trace_id": None, "release": sha}
    rec = record(tmp_path, gen2(telemetry=telemetry))
    assert (rec.release, rec.release_sha, rec.trace_id) == (sha, sha.lower(), None)


def test_gen2_background_job_keeps_its_task(tmp_path: Path) -> None:
    context = {
        "route": None,
        "component": "billing",
        "env": "staging",
        "task": "app.billing.tasks.x",
    }
    rec = record(tmp_path, gen2(context=context, telemetry=..., exception=None, stack=None))
    assert (rec.route, rec.task, rec.environment) == (None, "app.billing.tasks.x", "staging")
    assert rec.release is None and rec.exception_type is None and rec.frames is None


def test_gen2_p4_is_low_and_odd_status_spelling_is_mapped(tmp_path: Path) -> None:
    rec = record(tmp_path, gen2(severity="P4", status="In-Progress"))
    assert (rec.severity, rec.status) == ("low", "in_progress") and rec.warnings == []


# --- generation 3 ------------------------------------------------------------------------


def test_gen3_maps_events_one_to_one(tmp_path: Path) -> None:
    rec = record(tmp_path, gen3())
    assert [(e.kind, e.actor, e.from_status, e.to_status, e.body) for e in rec.events] == [
        ("claimed", "agent:fixer-7", None, None, None),
        ("status_changed", "agent:fixer-7", "new", "in_progress", None),
        ("note", "agent:fixer-7", None, None, "On it."),
        ("enriched", "system:x", None, None, None),
    ]
    assert rec.events[0].at == utc(2025, 3, 1, 11, 30)
    assert rec.events[3].data == {"field": "k"}
    assert rec.created_at == utc(2025, 3, 1, 11, 22, 1)
    assert rec.updated_at == utc(2025, 3, 1, 12, 22, 1)
    assert rec.sla_due_at == utc(2025, 3, 1, 14, 22, 1)
    assert (rec.release, rec.release_sha) == ("f" * 40, "f" * 40)
    assert (rec.exception_type, rec.route, rec.component) == (
        "IntegrityError",
        "POST /orders/{order_id}",
        "orders",
    )


def test_gen3_duplicate_is_closed_as_duplicate(tmp_path: Path) -> None:
    rec = record(tmp_path, gen3(status="closed", duplicate_of="earlier-id"))
    assert (rec.status, rec.close_reason, rec.duplicate_of) == ("closed", "duplicate", "earlier-id")


def test_gen3_resolution_without_commits_is_a_wont_fix(tmp_path: Path) -> None:
    resolution = {"notes": "Won't fix: third-party issue", "commit_shas": []}
    rec = record(tmp_path, gen3(status="closed", resolution=resolution))
    assert (rec.close_reason, rec.resolution_notes, rec.resolution_commits) == (
        "wont_fix",
        "Won't fix: third-party issue",
        [],
    )


def test_gen3_resolved_keeps_resolution(tmp_path: Path) -> None:
    resolution = {"notes": "Fixed.", "commit_shas": ["1" * 40]}
    rec = record(tmp_path, gen3(status="resolved", resolution=resolution, resolved_at=1740900000000))
    assert (rec.status, rec.close_reason, rec.resolution_commits) == ("resolved", None, ["1" * 40])
    assert rec.resolved_at == utc(2025, 3, 2, 7, 20)


def test_duplicate_of_itself_is_dropped(tmp_path: Path) -> None:
    obj = gen3()
    rec = record(tmp_path, {**obj, "duplicate_of": obj["id"]})
    assert rec.duplicate_of is None and rec.warnings


# --- dirty values ------------------------------------------------------------------------


@pytest.mark.parametrize("title", [..., "", "   ", None])
@pytest.mark.parametrize("build", [gen1, gen2, gen3])
def test_missing_title_is_quarantined(tmp_path: Path, title: object, build: Any) -> None:
    key = "summary" if build is gen2 else "title"
    obj = build()
    if title is ...:
        del obj[key]
    else:
        obj[key] = title
    result = mapped(tmp_path, obj)
    assert isinstance(result, Quarantine) and result.reason == MISSING_TITLE
    assert key in result.message


@pytest.mark.parametrize("severity", ["urgent", "blocker", "sev1", "P9", "major", None])
def test_unknown_severity_defaults_to_medium_with_a_warning(tmp_path: Path, severity: object) -> None:
    rec = record(tmp_path, gen3(severity=severity))
    assert rec.severity == "medium"
    assert any("severity" in w and repr(severity) in w for w in rec.warnings)


def test_status_in_no_vocabulary_is_new_with_a_warning(tmp_path: Path) -> None:
    rec = record(tmp_path, gen1(status="Done"))
    assert rec.status == "new"
    assert any("'Done'" in w for w in rec.warnings)


def test_status_in_no_vocabulary_follows_the_history_when_there_is_one(tmp_path: Path) -> None:
    rec = record(tmp_path, gen3(status="Done"))
    assert rec.status == "in_progress"
    assert any("'Done'" in w and "last status change" in w for w in rec.warnings)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("01/06/2024 10:22", utc(2024, 6, 1, 10, 22)), ("1717237321", utc(2024, 6, 1, 10, 22, 1))],
)
def test_odd_creation_times(tmp_path: Path, value: str, expected: datetime) -> None:
    assert record(tmp_path, gen2(created_at=value)).created_at == expected


def test_future_creation_time_is_kept_with_a_warning(tmp_path: Path) -> None:
    rec = record(tmp_path, gen1(created="2099-05-01 10:22:01"))
    assert rec.created_at == utc(2099, 5, 1, 10, 22, 1)
    assert any("future" in w for w in rec.warnings)


def test_unparseable_creation_time_falls_back_to_other_times(tmp_path: Path) -> None:
    rec = record(tmp_path, gen3(created_at="soon"))
    assert rec.created_at == utc(2025, 3, 1, 11, 30)
    assert any("created_at" in w for w in rec.warnings)
    result = mapped(tmp_path, gen1(created="soon"), name="r2.json")
    assert isinstance(result, Quarantine) and result.reason == INVALID_TIMESTAMP


def test_latin1_warning_reaches_the_record(tmp_path: Path) -> None:
    data = json.dumps(gen1(body="Señora Núñez"), ensure_ascii=False).encode("latin-1")
    (tmp_path / "r.json").write_bytes(data)
    (entry,) = iter_entries(tmp_path)
    rec = map_entry(entry, now=NOW)
    assert isinstance(rec, Record) and rec.description == "Señora Núñez"
    assert any("UTF-8" in w for w in rec.warnings)


def test_reader_quarantine_passes_through(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_bytes(b"")
    (entry,) = iter_entries(tmp_path)
    assert map_entry(entry) == entry.error


# --- copies of one id --------------------------------------------------------------------


def _copy(tmp_path: Path, obj: dict[str, Any], name: str) -> Record:
    return record(tmp_path, obj, name)


def test_more_history_wins(tmp_path: Path) -> None:
    old = _copy(tmp_path, gen1(), "a.json")
    notes = ["2023-05-02 09:14:55 agent:fixer: Fix in review."]
    new = _copy(tmp_path, gen1(notes=notes), "a.json.bak")
    assert freshness(new) > freshness(old)
    current, stale = resolve_duplicates([old, new])
    assert current == [new]
    assert [(r, q.reason) for r, q in stale] == [(old, STALE_DUPLICATE)]
    assert "a.json.bak" in stale[0][1].message


def test_later_updated_at_wins_when_histories_are_equal(tmp_path: Path) -> None:
    old = _copy(tmp_path, gen2(status="new"), "x.json")
    new = _copy(tmp_path, gen2(status="triaged", updated_at="2024-06-03T00:00:00Z"), "x (1).json")
    assert max([old, new], key=freshness) is new


def test_later_status_wins_when_history_and_time_are_equal(tmp_path: Path) -> None:
    old = _copy(tmp_path, gen1(status="open"), "a.json")
    new = _copy(tmp_path, gen1(status="fixed"), "b.json")
    assert max([new, old], key=freshness) is new


def test_identical_copies_prefer_a_plain_file_name(tmp_path: Path) -> None:
    copy = _copy(tmp_path, gen3(), "x (1).json")
    plain = _copy(tmp_path, gen3(), "x.json")
    bak = _copy(tmp_path, gen3(), "x.json.bak")
    current, stale = resolve_duplicates([copy, bak, plain])
    assert current == [plain] and len(stale) == 2


def test_dangling_duplicate_links_are_dropped(tmp_path: Path) -> None:
    target = _copy(tmp_path, gen3(), "t.json")
    linked = _copy(tmp_path, gen3(id="b", status="closed", duplicate_of=target.legacy_id), "b.json")
    dangling = _copy(tmp_path, gen3(id="c", status="closed", duplicate_of="nowhere"), "c.json")
    records = [target, linked, dangling]
    assert unlink_dangling_duplicates(records, {r.legacy_id for r in records}) == 1
    assert linked.duplicate_of == target.legacy_id
    assert (dangling.duplicate_of, dangling.close_reason) == (None, None)
    assert any("nowhere" in w for w in dangling.warnings)


def test_legacy_event_defaults() -> None:
    event = LegacyEvent("note", NOW, None)
    assert (event.body, event.from_status, event.to_status, event.data) == (None, None, None, {})


# --- the sample store ----------------------------------------------------------------------


def _sample_dir() -> Path:
    configured = os.environ.get("BUGDESK_LEGACY_SAMPLE")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared/legacy/sample"


SAMPLE = _sample_dir()


@pytest.mark.skipif(not (SAMPLE / "MANIFEST.jsonl").is_file(), reason=f"legacy sample store not found at {SAMPLE}")
def test_sample_store_matches_its_manifest() -> None:
    """Every manifest line gets the expected outcome and, for imports, the expected values."""
    outcomes: dict[tuple[str, int | None, int | None], Record | Quarantine] = {}
    records: list[Record] = []
    for entry in iter_entries(SAMPLE / "reports"):
        result = map_entry(entry, now=NOW)
        outcomes["reports/" + entry.path, entry.line, entry.index] = result
        if isinstance(result, Record):
            records.append(result)
    current, stale = resolve_duplicates(records)
    unlink_dangling_duplicates(current, {r.legacy_id for r in current})
    for rec, quarantine in stale:
        outcomes["reports/" + rec.path, rec.line, rec.index] = quarantine

    mismatches: list[str] = []
    seen = Counter()
    with open(SAMPLE / "MANIFEST.jsonl", encoding="utf-8") as manifest:
        for text in manifest:
            want = json.loads(text)
            key = (want["path"], want.get("line"), want.get("index"))
            got = outcomes.pop(key, None)
            problems = _compare(want, got)
            seen[want["expected"]] += 1
            mismatches += [f"{key}: {p}" for p in problems]
    mismatches += [f"{key}: not in the manifest" for key in outcomes]
    assert sum(seen.values()) > 0
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:30])


def _compare(want: dict[str, Any], got: Record | Quarantine | None) -> list[str]:
    if got is None:
        return ["no entry read"]
    if want["expected"] == "quarantine":
        if not isinstance(got, Quarantine) or got.reason != want["reason"]:
            return [f"expected quarantine {want['reason']}, got {got!r:.200}"]
        return []
    if not isinstance(got, Record):
        return [f"expected import, got {got!r}"]
    problems = []
    if want["legacy_id"] != got.legacy_id:
        problems.append(f"legacy_id {got.legacy_id!r} != {want['legacy_id']!r}")
    if want["generation"] != got.generation:
        problems.append(f"generation {got.generation} != {want['generation']}")
    created = got.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if want["created_at"] is not None and created != want["created_at"]:
        problems.append(f"created_at {created} != {want['created_at']}")
    for name in ("severity", "status"):
        expected = want[name]
        if expected is None:
            # The manifest leaves the value open: any value is fine, but with a warning.
            if not any(name in w for w in got.warnings):
                problems.append(f"{name} {getattr(got, name)!r} was defaulted without a warning")
        elif getattr(got, name) != expected:
            problems.append(f"{name} {getattr(got, name)!r} != {expected!r}")
    # A null duplicate_of is left open, except for dangling links, which must be dropped.
    link_checked = want["duplicate_of"] is not None or want["dirty"] == "dangling_duplicate_of"
    if link_checked and got.duplicate_of != want["duplicate_of"]:
        problems.append(f"duplicate_of {got.duplicate_of!r} != {want['duplicate_of']!r}")
    if want["traceback"] != got.stacktrace_source:
        problems.append(f"traceback found in {got.stacktrace_source!r}, not {want['traceback']!r}")
    return problems
