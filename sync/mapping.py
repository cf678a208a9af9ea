"""Map legacy report entries of every generation onto one normalised :class:`Record`.

:func:`map_entry` turns a :class:`~sync.reader.Entry` into a :class:`Record` in bugdesk
vocabulary (severity, status, source, UTC datetimes, :class:`LegacyEvent` history) or a
:class:`~sync.reader.Quarantine`. Values that can be read but are odd (an unknown
severity, a status in no vocabulary, a creation time in the future, a decoding fallback)
are mapped to a safe default and named in ``Record.warnings`` instead of failing.

:func:`freshness` orders copies of one legacy id, :func:`resolve_duplicates` keeps the
newest copy of each id, and :func:`unlink_dangling_duplicates` drops ``duplicate_of``
links whose target exists nowhere. :func:`route_template` turns a concrete URL into a
route template and :func:`route_key` spells routes of all generations alike. Nothing here
touches a database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sync.reader import (
    MISSING_ID,
    MISSING_TITLE,
    STALE_DUPLICATE,
    UNKNOWN_FORMAT,
    Entry,
    Quarantine,
)
from sync.timeparse import TimestampError, parse_timestamp
from sync.tracebacks import exception_of, find_traceback

__all__ = [
    "CLOSE_REASONS",
    "DEFAULT_SEVERITY",
    "INVALID_TIMESTAMP",
    "SEVERITIES",
    "STATUSES",
    "LegacyEvent",
    "Record",
    "freshness",
    "map_entry",
    "normalise_severity",
    "normalise_status",
    "resolve_duplicates",
    "route_key",
    "route_template",
    "unlink_dangling_duplicates",
]

INVALID_TIMESTAMP = "invalid_timestamp"

SEVERITIES = ("critical", "high", "medium", "low")
DEFAULT_SEVERITY = "medium"
STATUSES = ("new", "triaged", "in_progress", "awaiting_verification", "resolved", "closed")
CLOSE_REASONS = ("wont_fix", "duplicate")
SOURCES = ("user", "agent", "system")

_SEVERITY = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "low": "low",
    "p0": "critical",
    "p1": "high",
    "p2": "medium",
    "p3": "low",
    "p4": "low",
}

# Keys are the status spelled in lower case without separators, so "In-Progress",
# "IN_PROGRESS", "in progress" and "inprogress" all meet; the vocabularies of the three
# generations share one table because old writers kept running after each switch.
_STATUS: dict[str, tuple[str, str | None]] = {
    "new": ("new", None),
    "open": ("new", None),
    "triaged": ("triaged", None),
    "fixing": ("in_progress", None),
    "inprogress": ("in_progress", None),
    "awaitingverification": ("awaiting_verification", None),
    "fixed": ("resolved", None),
    "resolved": ("resolved", None),
    "closed": ("closed", None),
    "wontfix": ("closed", "wont_fix"),
}
_STATUS_RANK = {status: rank for rank, status in enumerate(STATUSES)}
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")

_SHA = re.compile(r"[0-9a-fA-F]{40}")
_WONT_FIX_NOTE = re.compile(r"\bwon'?t[\s_-]*fix\b", re.IGNORECASE)
# Gen-1 note strings: "<time> <actor>: <text>"; the time has a space inside and the actor
# has a colon inside ("agent:fixer"), so the actor is the last token before ": ".
_G1_NOTE = re.compile(
    r"(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)"
    r"\s+(\S+?):(?:\s(.*)|$)",
    re.DOTALL,
)
# A creation time this far ahead of "now" is clock skew rather than time zones.
_FUTURE_SLACK = timedelta(days=1)


@dataclass(slots=True)
class LegacyEvent:
    """One history item of a legacy report (a note, a status change, a claim, ...)."""

    kind: str
    at: datetime
    actor: str | None
    body: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Record:
    """A legacy report in bugdesk vocabulary, ready for the service layer.

    ``release`` is the raw release value (a sha or a version string); ``release_sha`` is
    set only when that value is a 40-hex commit sha (versions are resolved later through
    the deploy timeline). ``duplicate_of`` is the *legacy* id of the target.
    ``stacktrace_source`` says where the traceback text came from: ``"field"``,
    ``"description"`` (pasted into the prose) or ``None``. ``frames`` holds generation-2
    structured frames as written. ``path``/``line``/``index``/``content_hash`` identify
    the copy the record was read from.
    """

    legacy_id: str
    generation: int
    title: str
    description: str | None
    severity: str
    category: str | None
    status: str
    close_reason: str | None
    source: str
    reporter_id: str | None
    assignee_id: str | None
    component: str | None
    route: str | None
    url: str | None
    task: str | None
    environment: str | None
    exception_type: str | None
    exception_message: str | None
    stacktrace: str | None
    stacktrace_source: str | None
    frames: list[dict[str, Any]] | None
    trace_id: str | None
    request_id: str | None
    release: str | None
    release_sha: str | None
    duplicate_of: str | None
    resolution_notes: str | None
    resolution_commits: list[str]
    created_at: datetime
    updated_at: datetime | None
    resolved_at: datetime | None
    sla_due_at: datetime | None
    events: list[LegacyEvent]
    warnings: list[str]
    path: str = ""
    line: int | None = None
    index: int | None = None
    content_hash: str = ""


# --- vocabularies ------------------------------------------------------------------------


def normalise_severity(value: object) -> str | None:
    """bugdesk severity for a documented name or P0-P4 (any case), else ``None``."""
    if isinstance(value, str):
        return _SEVERITY.get(value.strip().lower())
    return None


def normalise_status(value: object) -> tuple[str, str | None] | None:
    """``(status, close_reason)`` for any generation's status word, else ``None``.

    Case and separators do not matter; ``wontfix`` is ``("closed", "wont_fix")``.
    """
    if not isinstance(value, str):
        return None
    return _STATUS.get(_NOT_ALNUM.sub("", value.lower()))


# --- small field helpers -----------------------------------------------------------------


def _str(value: object) -> str | None:
    """A non-empty string for str and number values; ``None`` for anything else."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _text(value: object) -> str | None:
    # Prose keeps its inner whitespace; only type and emptiness are checked.
    if isinstance(value, str):
        return value if value.strip() else None
    return _str(value)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _time(raw: dict[str, Any], key: str, warnings: list[str]) -> datetime | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (TimestampError, OverflowError) as exc:
        warnings.append(f"{key}: {exc}; left empty")
        return None


def _actor(value: object) -> str | None:
    # A bare actor name (gen-1 "cron") is a system account, so it gets the "system:" kind.
    actor = _str(value)
    if actor is None or ":" in actor:
        return actor
    return "system:" + actor


def _source_of(actor: str | None) -> str | None:
    if actor is None:
        return None
    kind = actor.split(":", 1)[0].lower()
    return kind if kind in SOURCES else None


_ID_SEGMENT = re.compile(
    r"\d+"  # numbers
    r"|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"  # uuids
    r"|(?=[a-zA-Z]*\d)[0-9a-fA-F]{8,}"  # hex ids and hashes (with at least one digit)
    r"|(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{16,}"  # opaque tokens (with at least one digit)
    r"|(?=(?:[^A-Z]*[A-Z]){3})(?=(?:[^a-z]*[a-z]){3})[A-Za-z]{16,}"  # random-case tokens
    r"|.*\d{2,}.*|.*[-_.]\d+"  # codes and slugs with a number (SKU-00042-BL, some-item-7)
)
_VERSION_SEGMENT = re.compile(r"v\d+(?:\.\d+)*", re.IGNORECASE)


def route_template(url: str | None) -> str | None:
    """A route template for a concrete request path: id-like path segments become ``{id}``.

    Numbers, UUIDs, hex ids, long opaque tokens and codes or slugs carrying a number are
    replaced; query string, fragment, scheme and host are dropped, and API version
    segments such as ``v2`` are kept. This is a best-effort grouping hint, not the
    application's real routing table.
    """
    if not url or not isinstance(url, str):
        return None
    parts = urlsplit(url.strip())
    path = parts.path or "/"
    segments = [
        "{id}" if seg and not _VERSION_SEGMENT.fullmatch(seg) and _ID_SEGMENT.fullmatch(seg) else seg
        for seg in path.split("/")
    ]
    return "/".join(segments) or "/"


_METHOD_PREFIX = re.compile(r"(?:GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)\s+", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"<(?:[^:<>]+:)?[^<>]+>|\{[^{}]+\}")


def route_key(route: str | None) -> str | None:
    """One comparable spelling of a route across generations.

    Records keep the route as each generation wrote it: a Flask rule
    (``/api/invoices/<int:invoice_id>``), a brace template that may start with the HTTP
    method (``POST /api/invoices/{invoice_id}``), or for generation 1 a template derived
    from the URL (``/api/invoices/{id}``). This drops the method and turns every
    placeholder into ``{id}`` so the three compare equal.
    """
    if not route or not isinstance(route, str):
        return None
    path = _METHOD_PREFIX.sub("", route.strip(), count=1)
    return _PLACEHOLDER.sub("{id}", path) or None


# --- the mapping -------------------------------------------------------------------------


def map_entry(entry: Entry, *, now: datetime | None = None) -> Record | Quarantine:
    """Map one entry to a :class:`Record`, or return why it cannot be imported.

    Entries the reader already quarantined keep their quarantine. ``now`` (default: the
    current time) is what "a creation time in the future" is measured against.
    """
    if entry.error is not None:
        return entry.error
    raw = entry.raw
    if raw is None or entry.generation not in _BY_GENERATION:
        return Quarantine(UNKNOWN_FORMAT, "no known report generation")
    legacy_id = entry.legacy_id
    if legacy_id is None:
        return Quarantine(MISSING_ID, "report without an id")
    title_key = "summary" if entry.generation == 2 else "title"
    title = raw.get(title_key)
    if _str(title) is None:
        if title_key not in raw:
            state = "missing"
        elif title is None:
            state = "null"
        elif isinstance(title, str):
            state = "blank"
        else:
            state = f"not text ({type(title).__name__})"
        return Quarantine(MISSING_TITLE, f"{title_key} is {state}")
    warnings = list(entry.warnings)
    fields = _BY_GENERATION[entry.generation](raw, warnings)
    created = fields.pop("created_at")
    if created is None:
        # No usable creation time: fall back to the earliest other time the report carries.
        times = [e.at for e in fields["events"]] + [fields["updated_at"]]
        known = [t for t in times if t is not None]
        if not known:
            return Quarantine(INVALID_TIMESTAMP, "no parseable creation time")
        created = min(known)
        warnings.append(f"creation time missing or unparseable; using {created.isoformat()}")
    elif created > (now or datetime.now(UTC)) + _FUTURE_SLACK:
        warnings.append(f"created_at {created.isoformat()} lies in the future; kept as written")
    if fields["updated_at"] is None:
        fields["updated_at"] = max([created, *(e.at for e in fields["events"])])
    record = Record(
        legacy_id=legacy_id,
        generation=entry.generation,
        title=_str(title) or "",
        created_at=created,
        warnings=warnings,
        path=entry.path,
        line=entry.line,
        index=entry.index,
        content_hash=entry.content_hash,
        **fields,
    )
    if record.duplicate_of == legacy_id:
        warnings.append("duplicate_of names the report itself; link dropped")
        record.duplicate_of = None
    return record


def _severity(value: object, warnings: list[str]) -> str:
    severity = normalise_severity(value)
    if severity is None:
        warnings.append(f"unknown severity {value!r}; defaulted to {DEFAULT_SEVERITY}")
        return DEFAULT_SEVERITY
    return severity


def _status(
    value: object, warnings: list[str], events: Sequence[LegacyEvent], resolved: bool
) -> tuple[str, str | None]:
    mapped = normalise_status(value)
    if mapped is not None:
        return mapped
    # A word in no vocabulary ("Done"): trust the report's own history where it has one,
    # otherwise put it back in the "new" queue, where a human will see it again, rather
    # than guessing a closed state and hiding a possibly open bug.
    changes = [e.to_status for e in events if e.kind == "status_changed" and e.to_status]
    if changes:
        status, why = changes[-1], "its last status change"
    elif resolved:
        status, why = "resolved", "its resolution data"
    else:
        status, why = "new", "no other evidence"
    warnings.append(f"status {value!r} is in no known vocabulary; mapped to {status} ({why})")
    return status, None


def _close_reason(
    status: str, explicit: str | None, duplicate_of: str | None, events: Sequence[LegacyEvent]
) -> str | None:
    if status != "closed":
        return None
    if explicit:
        return explicit
    if duplicate_of:
        return "duplicate"
    notes = [e.body for e in events if e.kind == "note" and e.body]
    if notes and _WONT_FIX_NOTE.search(notes[-1]):
        return "wont_fix"
    return None


def _traceback_fields(
    field_text: str | None, description: str | None
) -> tuple[str | None, str | None, str | None, str | None]:
    """``(stacktrace, source, exception_type, exception_message)``."""
    if field_text:
        return (field_text, "field", *exception_of(field_text))
    pasted = find_traceback(description)
    if pasted:
        return (pasted, "description", *exception_of(pasted))
    return None, None, None, None


def _event_time(value: object, fallback: datetime | None, label: str, warnings: list[str]) -> datetime | None:
    try:
        return parse_timestamp(value)
    except (TimestampError, OverflowError) as exc:
        warnings.append(f"{label}: {exc}; event time taken from the report")
        return fallback


def _gen1(raw: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    created = _time(raw, "created", warnings)
    reporter = _actor(raw.get("reported_by"))
    events: list[LegacyEvent] = []
    notes = raw.get("notes")
    for i, note in enumerate(notes if isinstance(notes, list) else []):
        text = _text(note)
        if text is None:
            continue
        m = _G1_NOTE.match(text.strip())
        at = None
        if m is not None:
            at = _event_time(m.group(1), None, f"notes[{i}]", warnings)
        if m is None or at is None:
            fallback = events[-1].at if events else created
            if fallback is None:
                continue
            warnings.append(f"notes[{i}] has no '<time> <actor>: <text>' prefix; kept as a note")
            events.append(LegacyEvent("note", fallback, None, text))
            continue
        events.append(LegacyEvent("note", at, _actor(m.group(2)), (m.group(3) or "").strip()))
    description = _text(raw.get("body"))
    stacktrace, tb_source, exc_type, exc_message = _traceback_fields(_text(raw.get("traceback")), description)
    url = _str(raw.get("url"))
    status, explicit = _status(raw.get("status"), warnings, events, resolved=False)
    return {
        "description": description,
        "severity": _severity(raw.get("level"), warnings),
        "category": "crash" if stacktrace else "other",
        "status": status,
        "close_reason": _close_reason(status, explicit, None, events),
        "source": _source_of(reporter) or "system",
        "reporter_id": reporter,
        "assignee_id": _actor(raw.get("assignee")),
        "component": _str(raw.get("component")),
        "route": route_template(url),
        "url": url,
        "task": None,
        "environment": None,
        "exception_type": exc_type,
        "exception_message": exc_message,
        "stacktrace": stacktrace,
        "stacktrace_source": tb_source,
        "frames": None,
        "trace_id": None,
        "request_id": None,
        "release": None,
        "release_sha": None,
        "duplicate_of": None,
        "resolution_notes": None,
        "resolution_commits": [],
        "created_at": created,
        # Gen 1 has no "updated" field: the last note is the last thing known to have changed.
        "updated_at": max((e.at for e in events), default=created),
        "resolved_at": None,
        "sla_due_at": None,
        "events": events,
    }


def _gen2(raw: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    created = _time(raw, "created_at", warnings)
    reporter_obj = raw.get("reporter")
    if isinstance(reporter_obj, dict):
        rid, kind = _str(reporter_obj.get("id")), _str(reporter_obj.get("kind"))
        if rid and ":" in rid:
            reporter = rid
        elif rid:
            reporter = f"{kind}:{rid}" if kind else _actor(rid)
        else:
            reporter = None
    else:
        reporter = _actor(reporter_obj)
    events: list[LegacyEvent] = []
    notes = raw.get("notes")
    for i, note in enumerate(notes if isinstance(notes, list) else []):
        if not isinstance(note, dict):
            continue
        at = _event_time(note.get("at"), created, f"notes[{i}].at", warnings)
        if at is None:
            continue
        extra = {k: v for k, v in note.items() if k not in ("at", "by", "text")}
        events.append(LegacyEvent("note", at, _actor(note.get("by")), _text(note.get("text")), data=extra))
    telemetry, context = _dict(raw.get("telemetry")), _dict(raw.get("context"))
    exception = _dict(raw.get("exception"))
    stack = raw.get("stack")
    frames = [f for f in stack if isinstance(f, dict)] if isinstance(stack, list) else None
    description = _text(raw.get("description"))
    exc_type = _str(exception.get("type"))
    exc_message = _text(exception.get("message"))
    stacktrace = tb_source = None
    if exc_type is None and not frames:
        stacktrace, tb_source, exc_type, exc_message = _traceback_fields(None, description)
    elif exc_type is not None:
        # Writers recorded the bare class name; keep it bare if a qualified one slipped in.
        exc_type = exc_type.rsplit(".", 1)[-1]
    release = _str(telemetry.get("release"))
    status, explicit = _status(raw.get("status"), warnings, events, resolved=False)
    source = _str(raw.get("source"))
    source = source.lower() if source else None
    if source not in SOURCES:
        derived = _source_of(reporter) or "system"
        if source is not None:
            warnings.append(f"unknown source {source!r}; using {derived}")
        source = derived
    return {
        "description": description,
        "severity": _severity(raw.get("severity"), warnings),
        "category": _category(raw.get("category")),
        "status": status,
        "close_reason": _close_reason(status, explicit, None, events),
        "source": source,
        "reporter_id": reporter,
        "assignee_id": _actor(raw.get("assignee")),
        "component": _str(context.get("component")),
        "route": _str(context.get("route")),
        "url": None,
        "task": _str(context.get("task")),
        "environment": _str(context.get("env")),
        "exception_type": exc_type,
        "exception_message": exc_message,
        "stacktrace": stacktrace,
        "stacktrace_source": "field" if frames or exception else tb_source,
        "frames": frames or None,
        "trace_id": _str(telemetry.get("trace_id")),
        "request_id": _str(telemetry.get("request_id")),
        "release": release,
        "release_sha": release.lower() if release and _SHA.fullmatch(release) else None,
        "duplicate_of": None,
        "resolution_notes": None,
        "resolution_commits": [],
        "created_at": created,
        "updated_at": _time(raw, "updated_at", warnings),
        "resolved_at": None,
        "sla_due_at": None,
        "events": events,
    }


def _gen3(raw: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    created = _time(raw, "created_at", warnings)
    events: list[LegacyEvent] = []
    raw_events = raw.get("events")
    for i, item in enumerate(raw_events if isinstance(raw_events, list) else []):
        if not isinstance(item, dict):
            continue
        kind = _str(item.get("type")) or "note"
        at = _event_time(item.get("at"), created, f"events[{i}].at", warnings)
        if at is None:
            continue
        data = {k: v for k, v in item.items() if k not in ("type", "at", "actor", "text", "from", "to")}
        from_status = to_status = None
        for key in ("from", "to"):
            value = item.get(key)
            if value is None:
                continue
            mapped = normalise_status(value)
            if mapped is None:
                warnings.append(f"events[{i}].{key}: unknown status {value!r}")
                data[key] = value
            elif key == "from":
                from_status = mapped[0]
            else:
                to_status = mapped[0]
        events.append(
            LegacyEvent(
                kind,
                at,
                _actor(item.get("actor")),
                _text(item.get("text")),
                from_status,
                to_status,
                data,
            )
        )
    resolution = _dict(raw.get("resolution"))
    commits_raw = resolution.get("commit_shas")
    commits = [c for c in commits_raw if isinstance(c, str)] if isinstance(commits_raw, list) else []
    description = _text(raw.get("description"))
    stacktrace, tb_source, exc_type, exc_message = _traceback_fields(_text(raw.get("stacktrace")), description)
    resolved_at = _time(raw, "resolved_at", warnings)
    status, explicit = _status(raw.get("status"), warnings, events, resolved=resolved_at is not None)
    duplicate_of = _str(raw.get("duplicate_of"))
    if explicit is None and status == "closed" and resolution and not commits and not duplicate_of:
        # Gen 3 marks a won't-fix as a resolution without commits.
        explicit = "wont_fix"
    release_sha = _str(raw.get("release_sha"))
    if release_sha and not _SHA.fullmatch(release_sha):
        warnings.append(f"release_sha {release_sha!r} is not a 40-hex sha; kept in release only")
    source = _str(raw.get("source"))
    source = source.lower() if source else None
    reporter = _actor(raw.get("reporter_id"))
    if source not in SOURCES:
        derived = _source_of(reporter) or "system"
        if source is not None:
            warnings.append(f"unknown source {source!r}; using {derived}")
        source = derived
    return {
        "description": description,
        "severity": _severity(raw.get("severity"), warnings),
        "category": _category(raw.get("category")),
        "status": status,
        "close_reason": _close_reason(status, explicit, duplicate_of, events),
        "source": source,
        "reporter_id": reporter,
        "assignee_id": _actor(raw.get("assignee_id")),
        "component": _str(raw.get("component")),
        "route": _str(raw.get("route")),
        "url": None,
        "task": None,
        "environment": _str(raw.get("environment")),
        "exception_type": exc_type,
        "exception_message": exc_message,
        "stacktrace": stacktrace,
        "stacktrace_source": tb_source,
        "frames": None,
        "trace_id": _str(raw.get("trace_id")),
        "request_id": _str(raw.get("request_id")),
        "release": release_sha,
        "release_sha": release_sha.lower() if release_sha and _SHA.fullmatch(release_sha) else None,
        "duplicate_of": duplicate_of,
        "resolution_notes": _text(resolution.get("notes")),
        "resolution_commits": commits,
        "created_at": created,
        "updated_at": _time(raw, "updated_at", warnings),
        "resolved_at": resolved_at,
        "sla_due_at": _time(raw, "sla_due_at", warnings),
        "events": events,
    }


def _category(value: object) -> str | None:
    category = _str(value)
    return category.lower() if category else None


_BY_GENERATION = {1: _gen1, 2: _gen2, 3: _gen3}


# --- copies of one id --------------------------------------------------------------------

_MIN_TIME = datetime.min.replace(tzinfo=UTC)
_COPY_NAME = re.compile(r"( \(\d+\)|[ _-]copy)(\.[^/]*)?$|\.(bak|backup|orig|old|save|sav|\d+)$|~$")


def freshness(record: Record) -> tuple[int, datetime, int, int, int, int]:
    """Sort key: of two copies of one legacy id, the one with the larger key is newer.

    Compared in this order, each signal only breaking ties of the ones before it:

    1. the number of history items (events or notes) - histories only grow, and the
       count does not depend on anyone's clock;
    2. ``updated_at`` (a writer's own claim, already normalised to UTC);
    3. the status's position in the lifecycle (a status change may leave no note in
       generations 1 and 2).

    Copies equal in all three are the same report state; then a standalone file beats
    an array element or a line, a file name without a copy/backup marker
    (``.bak``, `` (1)``) beats one with, and a later line of an append-only file beats
    an earlier one, so the choice stays deterministic.
    """
    standalone = int(record.line is None and record.index is None)
    plain_name = int(_COPY_NAME.search(record.path.rsplit("/", 1)[-1]) is None)
    return (
        len(record.events),
        record.updated_at or record.created_at or _MIN_TIME,
        _STATUS_RANK.get(record.status, -1),
        standalone,
        plain_name,
        record.line or 0,
    )


def resolve_duplicates(
    records: Iterable[Record],
) -> tuple[list[Record], list[tuple[Record, Quarantine]]]:
    """Keep the newest copy of each legacy id by :func:`freshness`.

    Returns ``(current, stale)``: the kept records in first-seen order, and every older
    copy paired with a ``stale_duplicate`` quarantine naming the copy that won.
    """
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(record.legacy_id, []).append(record)
    current: list[Record] = []
    stale: list[tuple[Record, Quarantine]] = []
    for legacy_id, copies in groups.items():
        winner = max(copies, key=freshness)
        current.append(winner)
        for copy in copies:
            if copy is not winner:
                stale.append(
                    (
                        copy,
                        Quarantine(
                            STALE_DUPLICATE,
                            f"older copy of {legacy_id}; newer copy is {_where(winner)}",
                        ),
                    )
                )
    return current, stale


def _where(record: Record) -> str:
    if record.line is not None:
        return f"{record.path} line {record.line}"
    if record.index is not None:
        return f"{record.path} [{record.index}]"
    return record.path


def unlink_dangling_duplicates(records: Iterable[Record], known_ids: set[str]) -> int:
    """Drop ``duplicate_of`` links to ids outside ``known_ids`` (with a warning each).

    Returns how many links were dropped. ``known_ids`` is every legacy id the caller
    can link to (this store's reports and, for an incremental sync, the database's).
    """
    dropped = 0
    for record in records:
        target = record.duplicate_of
        if target is not None and target not in known_ids:
            record.warnings.append(f"duplicate_of {target!r} names no known report; link dropped")
            record.duplicate_of = None
            if record.close_reason == "duplicate":
                record.close_reason = None
            dropped += 1
    return dropped
