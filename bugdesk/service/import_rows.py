"""Turning a mapped legacy entry into the rows the bulk import writes (see ``bugdesk.service.imports``).

:func:`build_report` validates one legacy report, fingerprints it and builds its report row
and event rows, already converted for the target database (:func:`dialect`) by the fast
paths of ``bugdesk.fields`` below; it does not touch the database. Worker processes run it
and send the result, a :class:`PreparedReport` inside the :class:`Item` and
:class:`FilePart` objects of a file, to the single writer
(:func:`bugdesk.service.imports.apply_batch`), so these types pickle positionally.
Kept apart from the writer because this half writes nothing and opens no transaction.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from peewee import ForeignKeyField, Model

from bugdesk import validate
from bugdesk.clock import as_utc
from bugdesk.config import Settings
from bugdesk.db import is_postgres
from bugdesk.errors import ValidationError
from bugdesk.fields import JSONField, UTCDateTimeField, UUIDField
from bugdesk.fingerprint import Fingerprint
from bugdesk.lifecycle import CLOSE_REASONS, EVENT_KINDS, STATUSES
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.models_sync import FILE_DONE
from bugdesk.service.dedup import fingerprint_of

__all__ = [
    "ACTOR",
    "EVENT_COLUMNS",
    "INVALID_VALUE",
    "POSTGRES",
    "REPORT_COLUMNS",
    "SQLITE",
    "FilePart",
    "FileState",
    "Item",
    "PreparedReport",
    "Rejected",
    "build_report",
    "dialect",
    "time_ordered_uuid",
]

ACTOR = "system:sync"
# The reason this module adds to the reader's: a value no column can hold.
INVALID_VALUE = "invalid_value"


# --- what callers hand in --------------------------------------------------------------------


@dataclass(slots=True)
class PreparedReport:
    """A legacy report ready to write: its row and event rows already converted for the target database.

    ``row`` follows :data:`REPORT_COLUMNS` with ``number`` and ``duplicate_of`` left empty
    (the batch assigns them); ``event_rows`` are the legacy history and ``imported_event``
    the import's own event, in :data:`EVENT_COLUMNS` order. Building them in the worker
    processes keeps the single writer busy with writing. ``copy_key`` orders copies of one
    legacy id by freshness (larger is newer) and is opaque here; ``link_target`` is the
    legacy id an explicit ``duplicate_of`` names.
    """

    legacy_id: str
    generation: int | None
    report_id: uuid.UUID
    row: tuple[Any, ...]
    event_rows: list[tuple[Any, ...]]
    imported_event: tuple[Any, ...]
    created_at: datetime
    fingerprint: Fingerprint
    copy_key: str
    link_target: str | None
    warnings: list[str]

    def __reduce__(self) -> tuple[Any, ...]:
        # Worker processes send these to the writer; positional rebuilding unpickles several
        # times faster than the generic per-attribute path of slotted dataclasses.
        fields = tuple(getattr(self, name) for name in self.__slots__)
        fp = self.fingerprint
        return (_rebuild_prepared, (fields, tuple(getattr(fp, name) for name in fp.__slots__)))

    def values(self) -> dict[str, Any]:
        """The report's column values as Python objects, decoded from ``row``."""
        fields = BugReport._meta.fields
        return {name: fields[name].python_value(v) for name, v in zip(REPORT_COLUMNS, self.row, strict=True)}


def _rebuild_prepared(fields: tuple[Any, ...], fingerprint: tuple[Any, ...]) -> PreparedReport:
    prepared = PreparedReport(*fields)
    prepared.fingerprint = Fingerprint(*fingerprint)
    return prepared


class _Positional:
    """Pickles a slotted dataclass as its positional arguments (see ``PreparedReport.__reduce__``)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, tuple(getattr(self, name) for name in self.__slots__))


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why :func:`build_report` cannot write a report: a reason category and a message."""

    reason: str
    message: str


@dataclass(slots=True)
class Item(_Positional):
    """One report candidate of a file: a whole file (position 0), a line, or an array element.

    ``position`` is 0 for a one-document file, the line number for a JSON-lines file and
    ``index + 1`` for an array element. Exactly one of ``report`` and ``reason`` is set;
    ``pending`` marks a broken entry of a file that may still be being written.
    """

    position: int
    line: int | None = None
    index: int | None = None
    byte_offset: int | None = None
    content_hash: str = ""
    legacy_id: str | None = None
    generation: int | None = None
    warnings: list[str] = field(default_factory=list)
    report: PreparedReport | None = None
    reason: str | None = None
    message: str | None = None
    pending: bool = False


@dataclass(slots=True)
class FileState(_Positional):
    """What is known about a file once the items of this part are written.

    ``sha256`` covers the whole file, or for a JSON-lines file the ``consumed_bytes`` read
    so far. ``first_part`` says the file was read from its start (its entry count starts
    again), ``last_part`` that no further part of it follows in this run; with ``restart``
    the entries of an earlier version that were not seen again are marked ``removed``.
    """

    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    consumed_bytes: int = 0
    consumed_lines: int = 0
    status: str = FILE_DONE
    first_part: bool = True
    last_part: bool = True
    restart: bool = True


@dataclass(slots=True)
class FilePart(_Positional):
    file: FileState
    items: list[Item]


# --- converting values for the database (fast paths of bugdesk.fields) ----------------------

SQLITE, POSTGRES = "sqlite", "postgres"
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def dialect() -> str:
    """The kind of the bound database, for :func:`build_report` in a process that has none bound."""
    return POSTGRES if is_postgres() else SQLITE


def _text(value: str) -> str:
    """Text every backend stores: NUL and lone surrogates (JSON ``"\\ud800"``) replaced."""
    if value.isascii():  # no surrogates possible, and a NUL search is a memchr: most text ends here
        return value if "\x00" not in value else value.replace("\x00", "\ufffd")
    if _BAD_TEXT.search(value) is None:
        return value
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _deep_text(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(k)): _deep_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_text(v) for v in value]
    return value


def _json(value: Any) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    if text.isascii() or _BAD_TEXT.search(text) is None:
        return text
    # json escapes NUL but writes lone surrogates as they are, which no backend stores.
    return json.dumps(_deep_text(value), separators=(",", ":"), ensure_ascii=False, default=str)


def _uuid(value: Any) -> str | None:
    return None if value is None else str(value)


def _datetime_sqlite(value: datetime | None) -> str | None:
    # UTCDateTimeField's text form, from isoformat (faster than strftime, same text).
    if value is None:
        return None
    if value.tzinfo is None:
        return value.isoformat(" ", "microseconds")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _datetime_postgres(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


@lru_cache(maxsize=64)
def _converters(model: type[Model], names: tuple[str, ...], kind: str) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(position, converter) for the columns whose Python value is not already the database value."""
    out = []
    for i, name in enumerate(names):
        field = model._meta.fields[name]
        if isinstance(field, ForeignKeyField):
            field = field.rel_field
        if isinstance(field, UTCDateTimeField):
            out.append((i, _datetime_sqlite if kind == SQLITE else _datetime_postgres))
        elif isinstance(field, UUIDField):
            out.append((i, _uuid))
        elif isinstance(field, JSONField):
            out.append((i, _json))
    return tuple(out)


def _row(model: type[Model], names: tuple[str, ...], kind: str, values: dict[str, Any]) -> tuple[Any, ...]:
    row = [values[n] for n in names]
    for i, convert in _converters(model, names, kind):
        row[i] = convert(row[i])
    return tuple(row)


def _py(model: type[Model], name: str, value: Any) -> Any:
    return model._meta.fields[name].python_value(value)


# --- the rows' columns ----------------------------------------------------------------------

REPORT_COLUMNS = (
    "id", "number", "title", "description", "severity", "category", "status", "close_reason", "source",
    "reporter_id", "assignee_id", "component", "route", "environment", "exception_type", "stacktrace",
    "trace_id", "request_id", "release_sha", "fingerprint", "duplicate_of", "resolution_notes",
    "resolution_commits", "needs_human", "version", "legacy_id", "details", "created_at", "updated_at",
    "resolved_at", "sla_due_at",
)  # fmt: skip
EVENT_COLUMNS = ("report", "kind", "actor", "from_status", "to_status", "body", "data", "created_at")


# --- building a report (pure) ---------------------------------------------------------------

# Optional fields a legacy value may spoil: dropped with a warning instead of losing the report.
_DROPPABLE = (
    "trace_id", "request_id", "reporter_id", "assignee_id", "component", "route", "environment",
    "exception_type", "category", "release", "source",
)  # fmt: skip
_TRUNCATABLE = {"title": validate.TITLE_MAX, "description": validate.TEXT_MAX, "stacktrace": validate.TEXT_MAX}
_last_uuid_ms = 0
_uuid_sequence = 0


def time_ordered_uuid() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): millisecond time first, so ids made one after the other sort together.

    Imported reports get new ids rather than their legacy UUIDs (``legacy_id`` keeps
    those): random keys put every insert on another page of the primary-key index and its
    foreign keys, and each batch's commit then writes thousands of pages instead of a few.
    A 12-bit counter keeps the ids of one process increasing within a millisecond.
    """
    global _last_uuid_ms, _uuid_sequence
    ms = time.time_ns() // 1_000_000
    if ms <= _last_uuid_ms:
        _uuid_sequence += 1
        if _uuid_sequence > 0xFFF:
            _last_uuid_ms, _uuid_sequence = _last_uuid_ms + 1, 0
        ms = _last_uuid_ms
    else:
        _last_uuid_ms, _uuid_sequence = ms, 0
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | _uuid_sequence << 64 | 0b10 << 62 | secrets.randbits(62)
    return uuid.UUID(int=value)


def build_report(
    data: dict[str, Any],
    *,
    legacy_id: str,
    generation: int | None,
    copy_key: str,
    source: dict[str, Any],
    events: Iterable[dict[str, Any]] = (),
    link_target: str | None = None,
    warnings: Iterable[str] = (),
    settings: Settings,
    kind: str = SQLITE,
    now: datetime,
) -> PreparedReport | Rejected:
    """Validate one legacy report, fingerprint it and build its rows; no database access.

    ``data`` holds what ``create_report`` accepts (title, description, severity, ...,
    ``created_at``) plus the legacy state: ``status``, ``close_reason``,
    ``resolution_notes``, ``resolution_commits``, ``updated_at``, ``resolved_at`` and
    ``sla_due_at``. A value that no column can hold is dropped (or, for long text,
    shortened) with a warning; only an unusable id rejects the report. The SLA is the
    legacy one when given, else ``created_at`` plus the policy of ``settings``. ``source``
    (path, line, index) and ``now`` go into the ``imported`` event; ``kind`` is the
    database the rows are for (:func:`dialect`).
    """
    from bugdesk.service.reports import normalize_new_report

    warnings = list(warnings)
    legacy_id = _text(legacy_id)
    if len(legacy_id) > validate.SHORT_MAX:
        return Rejected(INVALID_VALUE, f"legacy id is {len(legacy_id)} characters long; the limit is 255")
    data = {name: _text(value) if isinstance(value, str) else value for name, value in data.items()}
    data["legacy_id"] = legacy_id
    for name, limit in _TRUNCATABLE.items():
        text = data.get(name)
        if isinstance(text, str) and len(text) > limit:
            data[name] = text[:limit]
            warnings.append(f"{name} shortened from {len(text)} to {limit} characters")
    values = None
    for _ in range(len(_DROPPABLE) + 1):
        try:
            values = normalize_new_report(data)
            break
        except ValidationError as exc:
            name = exc.details.get("field")
            if name == "release":
                data.pop("release", None)
                data.pop("release_sha", None)
            elif name in _DROPPABLE and data.get(name) is not None:
                data[name] = None
            else:
                return Rejected(INVALID_VALUE, exc.message)
            warnings.append(f"{exc.message}; value dropped")
    if values is None:
        return Rejected(INVALID_VALUE, "too many invalid values")
    created = values["created_at"]
    if created is None:
        return Rejected(INVALID_VALUE, "no creation time")
    status = data.get("status") or "new"
    if status not in STATUSES:
        warnings.append(f"status {status!r} unknown; imported as new")
        status = "new"
    close_reason = data.get("close_reason") if status == "closed" else None
    if close_reason is not None and close_reason not in CLOSE_REASONS:
        warnings.append(f"close reason {close_reason!r} unknown; left empty")
        close_reason = None
    commits = []
    for sha in data.get("resolution_commits") or ():
        try:
            commits.append(validate.commit_sha(sha, "resolution_commits"))
        except ValidationError as exc:
            warnings.append(f"{exc.message}; dropped")
    fp = fingerprint_of(values)
    report_id = time_ordered_uuid()
    values.update(
        id=report_id,
        number=None,
        fingerprint=fp.hash,
        duplicate_of=None,
        version=1,
        status=status,
        close_reason=close_reason,
        resolution_notes=validate.clean_text(data.get("resolution_notes"), "resolution_notes"),
        resolution_commits=commits or None,
        exception_type=values["exception_type"] or (fp.exception_type or "")[: validate.SHORT_MAX] or None,
        resolved_at=_utc(data.get("resolved_at")),
        updated_at=_utc(data.get("updated_at")) or created,
        sla_due_at=_utc(data.get("sla_due_at")) or created + settings.sla_for(values["severity"]),
        needs_human=False,
    )
    report_key = str(report_id)
    event_rows = [_event_row(e, report_key, kind) for e in events]
    imported = {"path": source.get("path"), "generation": generation, "legacy_id": legacy_id}
    for key in ("line", "index"):
        if source.get(key) is not None:
            imported[key] = source[key]
    if warnings:
        imported["warnings"] = warnings
    imported_event = {
        "report": report_id, "kind": "imported", "actor": ACTOR, "from_status": None, "to_status": status,
        "body": None, "data": imported, "created_at": now,
    }  # fmt: skip
    return PreparedReport(
        legacy_id=legacy_id,
        generation=generation,
        report_id=report_id,
        row=_row(BugReport, REPORT_COLUMNS, kind, values),
        event_rows=event_rows,
        imported_event=_row(BugReportEvent, EVENT_COLUMNS, kind, imported_event),
        created_at=created,
        fingerprint=fp,
        copy_key=copy_key,
        link_target=link_target if link_target != legacy_id else None,
        warnings=warnings,
    )


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


_LEGACY_DATA = _json({"legacy": True})


def _event_row(event: dict[str, Any], report_key: str, kind: str) -> tuple[Any, ...]:
    """A legacy history item as a converted event row (EVENT_COLUMNS order): a known kind, an actor,
    storable text, and ``{"legacy": true}`` in its data so the history tells it from bugdesk's own."""
    event_kind = str(event.get("kind") or "note").strip().lower()
    extra = event.get("data")
    if event_kind not in EVENT_KINDS or event_kind in ("imported", "updated"):
        extra = {**(extra or {}), "legacy_type": event_kind}
        event_kind = "note"
    data = _json({**extra, "legacy": True}) if extra else _LEGACY_DATA
    actor = _text(str(event.get("actor") or "unknown"))[: validate.SHORT_MAX]
    from_status, to_status = (s if s in STATUSES else None for s in (event.get("from_status"), event.get("to_status")))
    body = event.get("body")
    created = (_datetime_sqlite if kind == SQLITE else _datetime_postgres)(as_utc(event["created_at"]))
    return (
        report_key, _text(event_kind)[:32], actor, from_status, to_status,
        _text(body) if isinstance(body, str) else None, data, created,
    )  # fmt: skip
