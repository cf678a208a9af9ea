"""The bulk import path of the service layer: legacy reports in checkpointed batches, with their history.

A caller (``sync.importer``) turns legacy entries into ``Item`` objects, grouped per file
in ``FilePart`` objects (both in ``bugdesk.service.import_rows``), and hands a batch of them
to :func:`apply_batch`. One batch is one transaction holding everything it changes: the
reports with their original times, their legacy events and one ``imported`` event each,
the ``bug_report_dedup`` counts, and the sync bookkeeping (files, entries, per-report copy
state, the run's checkpoint). A batch killed half-way leaves nothing behind, and running
the same batch again finds its work done, so an interrupted import is finished by running
it again.

Rules, in the order :func:`apply_batch` applies them to an entry:

* An entry whose bytes (``content_hash``) are unchanged since it was recorded is left
  alone: a second run over the same store writes nothing.
* A bad entry is recorded with its reason and message (``quarantined``), a file that is
  not a report is ``skipped``, a file still being written is ``pending`` (tried again
  later). None of them touches a report.
* A legacy id is imported once (``legacy_id`` is unique). Of several copies of one id the
  freshest wins whatever the order they are met in: the caller gives each copy a
  ``copy_key`` that sorts by freshness, ties broken by path and position. An older copy is
  recorded as ``stale`` (``stale_duplicate``) and never writes to the report; a fresher
  copy, or a changed file, updates the report and leaves an ``updated`` event naming what
  changed. A report changed in bugdesk since the importer wrote it is not overwritten:
  the legacy history is still added, the column changes are listed in the event only.
* Import never reopens or regresses anything: a report keeps its legacy status, and is
  only counted in its fingerprint group (no ``occurrence``/``regressed`` events). A report
  whose group already has a canonical becomes its duplicate, unless an explicit legacy
  ``duplicate_of`` link names another report; links whose target is not in yet are
  resolved by ``resolve_links`` (``bugdesk.service.import_links``) once all reports are
  in, and a link to an id that exists nowhere is dropped with a warning.

Reads and fingerprinting happen before and outside the writes (``build_report`` in
``bugdesk.service.import_rows`` is pure); this module is the writer: ``executemany``
statements per table, and the bookkeeping of roots, runs and files.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import DatabaseError, DataError, IntegrityError, Model

from bugdesk import validate
from bugdesk.clock import utcnow
from bugdesk.config import Settings
from bugdesk.db import database, is_postgres
from bugdesk.fingerprint import Fingerprint
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent
from bugdesk.models_sync import (
    FILE_PENDING,
    IMPORTED,
    LINK_LINKED,
    LINK_PENDING,
    PENDING,
    PROBLEM_OUTCOMES,
    QUARANTINED,
    REMOVED,
    SKIPPED,
    STALE,
    SyncEntry,
    SyncFile,
    SyncReport,
    SyncRoot,
    SyncRun,
)
from bugdesk.service._base import transaction
from bugdesk.service._fast import execute
from bugdesk.service.import_links import _MAX_CHAIN, resolve_links
from bugdesk.service.import_rows import (
    ACTOR,
    EVENT_COLUMNS,
    REPORT_COLUMNS,
    SQLITE,
    FilePart,
    FileState,
    Item,
    PreparedReport,
    _datetime_postgres,
    _datetime_sqlite,
    _json,
    _py,
    _row,
    _text,
    build_report,
    dialect,
)

# SQLITE, PreparedReport, build_report, dialect and resolve_links are re-exported: sync.importer uses imports.X.
__all__ = [
    "SQLITE",
    "BatchResult",
    "FileRow",
    "PreparedReport",
    "apply_batch",
    "build_report",
    "dialect",
    "file_rows",
    "finish_run",
    "mark_archived",
    "mark_deleted",
    "open_root",
    "problems",
    "resolve_links",
    "start_run",
]

STALE_DUPLICATE = "stale_duplicate"
NOT_A_REPORT = "not_a_report"
# Reasons the writer adds to the reader's (and to import_rows' invalid_value): a legacy id
# already used by a report the importer did not write, and a row the database refused.
CONFLICT = "conflict"
DB_ERROR = "db_error"

_IN_CHUNK = 500  # bound parameters per IN (...) list, well under every backend's limit


# --- what apply_batch and file_rows give back -----------------------------------------------


@dataclass(frozen=True, slots=True)
class FileRow:
    """The recorded state of one file (see ``bugdesk.models_sync.SyncFile``)."""

    id: int
    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str | None
    consumed_bytes: int
    consumed_lines: int
    entries: int
    status: str


@dataclass
class BatchResult:
    """Counters of one batch (or, merged, of a whole run) and a few examples for the summary."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    grouped: int = 0
    conflicts: int = 0
    pending: int = 0
    skipped: int = 0
    quarantined: Counter = field(default_factory=Counter)
    warnings: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)
    max_examples: int = 20

    def merge(self, other: BatchResult) -> None:
        for name in ("created", "updated", "unchanged", "stale", "grouped", "conflicts", "pending", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.warnings += other.warnings
        self.quarantined.update(other.quarantined)
        room = self.max_examples - len(self.examples)
        if room > 0:
            self.examples.extend(other.examples[:room])

    def example(self, kind: str, path: str, item: Item | None, message: str, legacy_id: str | None = None) -> None:
        if len(self.examples) < self.max_examples:
            self.examples.append(
                {
                    "kind": kind,
                    "path": path,
                    "line": item.line if item else None,
                    "index": item.index if item else None,
                    "legacy_id": legacy_id if legacy_id is not None else (item.legacy_id if item else None),
                    "message": message,
                }
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "stale_duplicates": self.stale,
            "duplicates_grouped": self.grouped,
            "conflicts": self.conflicts,
            "pending": self.pending,
            "skipped": self.skipped,
            "quarantined": dict(sorted(self.quarantined.items())),
            "warnings": self.warnings,
        }


# --- small SQL helpers ----------------------------------------------------------------------


def _param() -> str:
    return database.obj.param


def _chunks(values: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class _Rows:
    """Rows for one ``INSERT`` (or ``UPDATE ... WHERE key = ?``) statement, sent with ``executemany``."""

    def __init__(self, model: type[Model], names: Sequence[str], *, update_by: str | None = None) -> None:
        meta = model._meta
        self.model = model
        self.names = tuple(names)
        self.kind = dialect()
        columns = [f'"{meta.fields[n].column_name}"' for n in names]
        if update_by is None:
            self.sql = f'INSERT INTO "{meta.table_name}" ({", ".join(columns)}) VALUES ({_marks(len(columns))})'
            self.key_convert = None
        else:
            key = meta.fields[update_by]
            self.key_convert = key.db_value
            sets = ", ".join(f"{c} = ?" for c in columns)
            self.sql = f'UPDATE "{meta.table_name}" SET {sets} WHERE "{key.column_name}" = ?'
        self.rows: list[tuple[Any, ...]] = []

    def add(self, values: dict[str, Any], key: Any = None) -> None:
        row = _row(self.model, self.names, self.kind, values)
        if self.key_convert is not None:
            row = (*row, self.key_convert(key))
        self.rows.append(row)

    def flush(self) -> None:
        if not self.rows:
            return
        sql = self.sql if _param() == "?" else self.sql.replace("?", _param())
        database.cursor().executemany(sql, self.rows)
        self.rows.clear()


# Columns a fresher legacy copy may change on an imported report.
_NUMBER, _DUPLICATE_OF = REPORT_COLUMNS.index("number"), REPORT_COLUMNS.index("duplicate_of")
_UPDATABLE = (
    "title", "description", "severity", "category", "status", "close_reason", "source", "reporter_id",
    "assignee_id", "component", "route", "environment", "exception_type", "stacktrace", "trace_id",
    "request_id", "release_sha", "resolution_notes", "resolution_commits", "details", "created_at",
    "updated_at", "resolved_at", "sla_due_at",
)  # fmt: skip
_ENTRY_COLUMNS = (
    "file", "position", "line", "item_index", "byte_offset", "content_hash", "legacy_id", "generation",
    "outcome", "reason", "message", "warnings", "report", "first_seen_at", "updated_at",
)  # fmt: skip
_ENTRY_UPDATE = (
    "line", "item_index", "byte_offset", "content_hash", "legacy_id", "generation", "outcome", "reason",
    "message", "warnings", "report", "updated_at",
)  # fmt: skip
_SYNC_REPORTS_COLUMNS = (
    "report", "source_file", "source_position", "copy_key", "content_hash", "report_version",
    "fingerprint", "link_target", "link_state", "imported_at", "updated_at",
)  # fmt: skip
_FILE_COLUMNS = (
    "root", "path", "kind", "size", "mtime_ns", "sha256", "consumed_bytes", "consumed_lines", "entries", "status",
    "first_seen_at", "updated_at",
)  # fmt: skip
_FILE_UPDATE = (
    "kind", "size", "mtime_ns", "sha256", "consumed_bytes", "consumed_lines", "entries", "status", "updated_at",
)  # fmt: skip
_DEDUP_COLUMNS = (
    "fingerprint", "canonical", "algorithm", "kind", "signature", "exception_type", "frames", "component", "route",
    "occurrences", "first_seen_at", "last_seen_at",
)  # fmt: skip


# --- roots and runs -------------------------------------------------------------------------


def open_root(path: str, *, now: datetime | None = None) -> int:
    """The id of the imported folder ``path`` (an absolute path), recorded on first use."""
    row = SyncRoot.get_or_none(SyncRoot.path == path)
    if row is not None:
        return row.id
    with transaction():
        row = SyncRoot.get_or_none(SyncRoot.path == path)
        if row is None:
            row = SyncRoot.create(path=path, created_at=now or utcnow())
        return row.id


def start_run(root_id: int, command: str, *, now: datetime | None = None) -> int:
    """Record the start of an import or watch run; earlier runs on this host whose process is gone
    are marked ``interrupted`` (they were killed or crashed)."""
    now = now or utcnow()
    host = socket.gethostname()[:255]
    with transaction():
        for run in SyncRun.select().where((SyncRun.status == "running") & (SyncRun.host == host)):
            if not _alive(run.pid):
                SyncRun.update(status="interrupted", finished_at=now).where(SyncRun.id == run.id).execute()
        run = SyncRun.create(
            root=root_id, command=command, host=host, pid=os.getpid(), status="running", started_at=now, updated_at=now
        )
        return run.id


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finish_run(run_id: int, status: str, stats: dict[str, Any] | None = None, *, error: str | None = None) -> None:
    """Close a run: ``completed``, ``failed`` or ``interrupted``, with its summary."""
    now = utcnow()
    with transaction():
        SyncRun.update(status=status, finished_at=now, updated_at=now, stats=stats, error=error).where(
            SyncRun.id == run_id
        ).execute()


# --- reads ----------------------------------------------------------------------------------


def file_rows(root_id: int, paths: Sequence[str]) -> dict[str, FileRow]:
    """The recorded state of the given files of a root (absent paths are missing)."""
    out: dict[str, FileRow] = {}
    for chunk in _chunks(list(paths)):
        cursor = execute(
            "SELECT id, path, kind, size, mtime_ns, sha256, consumed_bytes, consumed_lines, entries, status "
            f"FROM sync_files WHERE root_id = ? AND path IN ({_marks(len(chunk))})",
            [root_id, *chunk],
        )
        for row in cursor.fetchall():
            out[row[1]] = FileRow(*row)
    return out


def problems(root_path: str | None = None, *, outcomes: Sequence[str] = PROBLEM_OUTCOMES) -> Iterator[dict[str, Any]]:
    """Every quarantined, stale, skipped or pending entry (of one root, or of all), in path order."""
    # "outcome <> 'imported'" is spelled as in the partial index, so SQLite reads only problem rows.
    sql = (
        "SELECT r.path, f.path, e.line, e.item_index, e.legacy_id, e.outcome, e.reason, e.message, e.report_id, "
        "e.updated_at FROM sync_entries e JOIN sync_files f ON f.id = e.file_id JOIN sync_roots r ON r.id = f.root_id "
        f"WHERE e.outcome <> 'imported' AND e.outcome IN ({_marks(len(outcomes))})"
    )
    params: list[Any] = list(outcomes)
    if root_path is not None:
        sql += " AND r.path = ?"
        params.append(root_path)
    cursor = execute(sql + " ORDER BY r.path, f.path, e.position", params)
    while rows := cursor.fetchmany(1000):
        for root, path, line, index, legacy_id, outcome, reason, message, report_id, seen in rows:
            yield {
                "root": root,
                "path": path,
                "line": line,
                "index": index,
                "legacy_id": legacy_id,
                "outcome": outcome,
                "reason": reason,
                "message": message,
                "report_id": str(_py(BugReport, "id", report_id)) if report_id else None,
                "seen_at": _py(SyncEntry, "updated_at", seen).isoformat(),
            }


# --- one batch ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    id: int
    content_hash: str
    outcome: str
    reason: str | None


@dataclass(slots=True)
class _State:
    """Per legacy id: the report and, once the importer wrote it, which copy its data came from."""

    report_id: uuid.UUID
    version: int
    synced: bool
    copy_key: str = ""
    content_hash: str = ""
    report_version: int = 0
    source_file: int | None = None
    source_position: int | None = None
    source_path: str = ""
    source_kind: str = ""
    fingerprint: str | None = None
    link_target: str | None = None
    link_state: str | None = None


@dataclass(slots=True)
class _Group:
    """A fingerprint's dedup row as this batch will leave it."""

    id: int | None
    canonical: uuid.UUID
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    fp: Fingerprint | None = None
    dirty: bool = False


def apply_batch(
    root_id: int,
    parts: Sequence[FilePart],
    *,
    settings: Settings,
    run_id: int | None = None,
    cursor: str | None = None,
    now: datetime | None = None,
) -> BatchResult:
    """Write one batch in one transaction; see the module docstring for the rules.

    A batch the database refuses as a whole (a row no rule foresaw) is retried file by
    file and then entry by entry, and an entry that still fails is quarantined as
    ``db_error`` with the database's message: one bad row never stops an import. Errors
    of the database itself (locked, disk full, connection lost) do stop it.
    """
    now = now or utcnow()
    try:
        return _with_retry(root_id, parts, settings, run_id, cursor, now)
    except (IntegrityError, DataError) as exc:
        if len(parts) == 1 and len(parts[0].items) <= 1:
            if not parts[0].items:
                raise
            return _quarantine_db_error(root_id, parts[0], exc, settings, run_id, cursor, now)
    pieces = list(parts) if len(parts) > 1 else _split(parts[0])
    result = BatchResult()
    for piece in pieces:
        result.merge(apply_batch(root_id, [piece], settings=settings, run_id=run_id, cursor=cursor, now=now))
    return result


def _split(part: FilePart) -> list[FilePart]:
    """One part per item, so a failing item can be told from the others.

    Only the last piece records the file as done: a crash between pieces leaves the file
    ``pending`` without a prefix hash, so the next run reads it again from the start.
    """
    pieces = []
    last = len(part.items) - 1
    for i, item in enumerate(part.items):
        state = FileState(**{name: getattr(part.file, name) for name in FileState.__slots__})
        state.first_part = part.file.first_part and i == 0
        state.last_part = part.file.last_part and i == last
        state.restart = part.file.restart and i == last and part.file.kind == "lines"
        if i != last:
            state.status, state.sha256 = FILE_PENDING, None
        pieces.append(FilePart(state, [item]))
    return pieces


def _with_retry(
    root_id: int, parts: Sequence[FilePart], settings: Settings, run_id: int | None, cursor: str | None, now: datetime
) -> BatchResult:
    for attempt in range(3):
        try:
            with transaction():
                batch = _Batch(root_id, settings, now)
                batch.run(parts, run_id, cursor)
                return batch.result
        except IntegrityError:
            # PostgreSQL: another writer inserted the same legacy id or fingerprint
            # meanwhile; the retry reads its rows and treats them as existing.
            if attempt == 2 or not is_postgres():
                raise
    raise AssertionError("unreachable")


def _quarantine_db_error(
    root_id: int,
    part: FilePart,
    exc: DatabaseError,
    settings: Settings,
    run_id: int | None,
    cursor: str | None,
    now: datetime,
) -> BatchResult:
    """Quarantine the one entry the database refused, so the run can go on."""
    item = part.items[0]
    bad = Item(
        position=item.position,
        line=item.line,
        index=item.index,
        byte_offset=item.byte_offset,
        content_hash=item.content_hash,
        legacy_id=item.legacy_id,
        generation=item.generation,
        warnings=item.warnings,
        reason=DB_ERROR,
        message=f"the database refused this entry: {' '.join(str(exc).split())[:500]}",
    )
    with transaction():
        batch = _Batch(root_id, settings, now)
        batch.run([FilePart(part.file, [bad])], run_id, cursor)
        return batch.result


class _Batch:
    """The state of one batch transaction: what was read, what it will write."""

    def __init__(self, root_id: int, settings: Settings, now: datetime) -> None:
        self.root_id = root_id
        self.settings = settings
        self.now = now
        self.result = BatchResult()
        self.file_ids: dict[str, int] = {}
        self.old_files: dict[str, FileRow] = {}
        self.entries: dict[tuple[int, int], _Entry] = {}
        self.states: dict[str, _State] = {}
        self.targets: dict[str, uuid.UUID] = {}
        self.groups: dict[str, _Group | None] = {}
        self.parents: dict[uuid.UUID, uuid.UUID | None] = {}
        self.numbers: list[int] = []
        self.next_number: int | None = None
        self.reports = _Rows(BugReport, REPORT_COLUMNS)
        self.events = _Rows(BugReportEvent, EVENT_COLUMNS)
        self.sync_reports = _Rows(SyncReport, _SYNC_REPORTS_COLUMNS)
        self.new_entries = _Rows(SyncEntry, _ENTRY_COLUMNS)
        self.entry_updates = _Rows(SyncEntry, _ENTRY_UPDATE, update_by="id")
        self.seen_positions: dict[int, list[int]] = defaultdict(list)
        # The batch's own timestamp, converted once: it goes into several rows per entry.
        self.now_db = _datetime_sqlite(now) if self.reports.kind == SQLITE else _datetime_postgres(now)

    # -- reading what the batch needs, a few queries for the whole batch --

    def run(self, parts: Sequence[FilePart], run_id: int | None, cursor: str | None) -> None:
        self._load_files(parts)
        self._load_entries(parts)
        prepared = [i.report for p in parts for i in p.items if i.report is not None]
        self._load_states(prepared)
        self._load_groups(prepared)
        for part in parts:
            file_id = self.file_ids[part.file.path]
            for item in part.items:
                self.seen_positions[file_id].append(item.position)
                self._item(part, file_id, item)
        self._flush()
        self._write_groups()
        self._write_files(parts)
        if run_id is not None:
            done = sum(1 for p in parts if p.file.last_part)
            execute(
                "UPDATE sync_runs SET cursor = ?, files_done = files_done + ?, entries_done = entries_done + ?, "
                "updated_at = ? WHERE id = ?",
                [cursor, done, sum(len(p.items) for p in parts), SyncRun.updated_at.db_value(utcnow()), run_id],
            )

    def _load_files(self, parts: Sequence[FilePart]) -> None:
        paths = list(dict.fromkeys(p.file.path for p in parts))
        self.old_files = file_rows(self.root_id, paths)
        self.file_ids = {path: row.id for path, row in self.old_files.items()}
        new = [p for p in paths if p not in self.old_files]
        if not new:
            return
        last = {p.file.path: p.file for p in parts}
        counts = Counter()
        for p in parts:
            counts[p.file.path] += len(p.items)
        rows = _Rows(SyncFile, _FILE_COLUMNS)
        for path in new:
            state = last[path]
            rows.rows.append(
                (self.root_id, path, state.kind, state.size, state.mtime_ns, state.sha256, state.consumed_bytes,
                 state.consumed_lines, counts[path], state.status, self.now_db, self.now_db)
            )  # fmt: skip
        rows.flush()
        for chunk in _chunks(new):
            cursor = execute(
                f"SELECT id, path FROM sync_files WHERE root_id = ? AND path IN ({_marks(len(chunk))})",
                [self.root_id, *chunk],
            )
            self.file_ids.update({path: file_id for file_id, path in cursor.fetchall()})

    def _load_entries(self, parts: Sequence[FilePart]) -> None:
        conditions: list[tuple[str, list[Any]]] = []
        for part in parts:
            if part.file.path not in self.old_files or not part.items:
                continue
            file_id = self.file_ids[part.file.path]
            if part.file.kind == "lines":
                low, high = part.items[0].position, part.items[-1].position
                conditions.append(("(file_id = ? AND position BETWEEN ? AND ?)", [file_id, low, high]))
            else:
                conditions.append(("file_id = ?", [file_id]))
        for chunk in _chunks(conditions, 200):
            where = " OR ".join(c for c, _ in chunk)
            params = [p for _, ps in chunk for p in ps]
            cursor = execute(
                f"SELECT id, file_id, position, content_hash, outcome, reason FROM sync_entries WHERE {where}", params
            )
            for entry_id, file_id, position, content_hash, outcome, reason in cursor.fetchall():
                self.entries[file_id, position] = _Entry(entry_id, content_hash, outcome, reason)

    def _load_states(self, prepared: Sequence[PreparedReport]) -> None:
        ids = list(dict.fromkeys(p.legacy_id for p in prepared))
        targets = list(dict.fromkeys(p.link_target for p in prepared if p.link_target))
        for chunk in _chunks(ids):
            cursor = execute(
                "SELECT r.id, r.legacy_id, r.version, s.report_id, s.copy_key, s.content_hash, s.report_version, "
                "s.source_file_id, s.source_position, f.path, f.kind, s.fingerprint, s.link_target, s.link_state "
                "FROM bug_reports r LEFT JOIN sync_reports s ON s.report_id = r.id "
                "LEFT JOIN sync_files f ON f.id = s.source_file_id "
                f"WHERE r.legacy_id IN ({_marks(len(chunk))})",
                list(chunk),
            )
            for row in cursor.fetchall():
                report_id = _py(BugReport, "id", row[0])
                self.states[row[1]] = _State(
                    report_id=report_id,
                    version=row[2],
                    synced=row[3] is not None,
                    copy_key=row[4] or "",
                    content_hash=row[5] or "",
                    report_version=row[6] or 0,
                    source_file=row[7],
                    source_position=row[8],
                    source_path=row[9] or "",
                    source_kind=row[10] or "",
                    fingerprint=row[11],
                    link_target=row[12],
                    link_state=row[13],
                )
                self.targets[row[1]] = report_id
        missing = [t for t in targets if t not in self.targets]
        for chunk in _chunks(missing):
            cursor = execute(f"SELECT id, legacy_id FROM bug_reports WHERE legacy_id IN ({_marks(len(chunk))})", chunk)
            for report_id, legacy_id in cursor.fetchall():
                self.targets[legacy_id] = _py(BugReport, "id", report_id)

    def _load_groups(self, prepared: Sequence[PreparedReport]) -> None:
        hashes = sorted({p.fingerprint.hash for p in prepared})
        self._fetch_groups(hashes)

    def _fetch_groups(self, hashes: Sequence[str]) -> None:
        hashes = [h for h in hashes if h not in self.groups]
        lock = " FOR UPDATE" if is_postgres() else ""
        for chunk in _chunks(hashes):
            cursor = execute(
                "SELECT id, fingerprint, canonical_id, occurrences, first_seen_at, last_seen_at "
                f"FROM bug_report_dedup WHERE fingerprint IN ({_marks(len(chunk))}) ORDER BY fingerprint{lock}",
                list(chunk),
            )
            for row_id, fp, canonical, occurrences, first, last in cursor.fetchall():
                self.groups[fp] = _Group(
                    id=row_id,
                    canonical=_py(BugReport, "id", canonical),
                    occurrences=occurrences,
                    first_seen_at=_py(BugReportDedup, "first_seen_at", first),
                    last_seen_at=_py(BugReportDedup, "last_seen_at", last),
                )
        for h in hashes:
            self.groups.setdefault(h, None)
        # The canonicals' own links, in one query, for the duplicate_of roots.
        canonicals = list({g.canonical for g in self.groups.values() if g is not None} - set(self.parents))
        for chunk in _chunks(canonicals):
            cursor = execute(
                f"SELECT id, duplicate_of_id FROM bug_reports WHERE id IN ({_marks(len(chunk))})",
                [BugReport.id.db_value(c) for c in chunk],
            )
            for report_id, parent in cursor.fetchall():
                self.parents[_py(BugReport, "id", report_id)] = _py(BugReport, "id", parent) if parent else None

    def _root(self, report_id: uuid.UUID) -> uuid.UUID:
        """Follow duplicate_of links to the group's canonical report."""
        seen = {report_id}
        current = report_id
        for _ in range(_MAX_CHAIN):
            if current not in self.parents:
                row = execute("SELECT duplicate_of_id FROM bug_reports WHERE id = ?", [BugReport.id.db_value(current)])
                found = row.fetchone()
                self.parents[current] = _py(BugReport, "id", found[0]) if found and found[0] else None
            parent = self.parents[current]
            if parent is None or parent in seen:
                return current
            seen.add(parent)
            current = parent
        return current

    # -- one item --

    def _item(self, part: FilePart, file_id: int, item: Item) -> None:
        path = part.file.path
        old = self.entries.get((file_id, item.position))
        if (
            old is not None
            and old.content_hash == item.content_hash
            and old.outcome not in (PENDING, REMOVED)
            and old.reason != DB_ERROR
        ):
            self.result.unchanged += 1
            return
        if item.report is None:
            self._problem(path, file_id, item, old)
            return
        prepared = item.report
        state = self.states.get(prepared.legacy_id)
        if state is None:
            self._insert(path, file_id, item, old)
        elif not state.synced:
            message = f"legacy id {prepared.legacy_id} already belongs to a report the importer did not write"
            self._entry(file_id, item, old, QUARANTINED, CONFLICT, message, None)
            self.result.quarantined[CONFLICT] += 1
            self.result.example("quarantined", path, item, message)
        else:
            self._existing(part, file_id, item, old, state)

    def _problem(self, path: str, file_id: int, item: Item, old: _Entry | None) -> None:
        if item.pending:
            outcome = PENDING
            self.result.pending += 1
        elif item.reason == NOT_A_REPORT:
            outcome = SKIPPED
            self.result.skipped += 1
        else:
            outcome = QUARANTINED
            self.result.quarantined[item.reason] += 1
            self.result.example("quarantined", path, item, f"{item.reason}: {item.message}")
        self._entry(file_id, item, old, outcome, item.reason, item.message, None)

    def _entry(
        self,
        file_id: int,
        item: Item,
        old: _Entry | None,
        outcome: str,
        reason: str | None,
        message: str | None,
        report_id: uuid.UUID | None,
    ) -> None:
        warnings = item.report.warnings if item.report is not None else item.warnings
        # Built as a tuple in _ENTRY_COLUMNS order: this runs once per entry on the writer.
        row = (
            file_id, item.position, item.line, item.index, item.byte_offset, item.content_hash,
            _text(item.legacy_id)[: validate.SHORT_MAX] if item.legacy_id else None, item.generation,
            outcome, reason, _text(message) if message else None, _json(warnings) if warnings else None,
            str(report_id) if report_id is not None else None, self.now_db, self.now_db,
        )  # fmt: skip
        if old is None:
            self.new_entries.rows.append(row)
            self.entries[file_id, item.position] = _Entry(0, item.content_hash, outcome, reason)
        else:
            # _ENTRY_UPDATE is _ENTRY_COLUMNS without file, position and first_seen_at, then the key.
            self.entry_updates.rows.append((*row[2:13], self.now_db, old.id))
            old.content_hash, old.outcome, old.reason = item.content_hash, outcome, reason

    def _insert(self, path: str, file_id: int, item: Item, old: _Entry | None) -> None:
        prepared = item.report
        assert prepared is not None
        report_id = prepared.report_id
        row = list(prepared.row)
        fp = prepared.fingerprint
        group = self._group(fp)
        link_state = None
        duplicate_of = None
        if prepared.link_target:
            duplicate_of = self.targets.get(prepared.link_target)
            link_state = LINK_LINKED if duplicate_of is not None else LINK_PENDING
        if duplicate_of is None and group is not None:
            root = self._root(group.canonical)
            duplicate_of = root if root != report_id else None
        row[_NUMBER] = self._number()
        row[_DUPLICATE_OF] = str(duplicate_of) if duplicate_of is not None else None
        self.reports.rows.append(tuple(row))
        self.parents[report_id] = duplicate_of
        # A report that opens a group while being an explicit duplicate opens it under its
        # original's canonical, as a merge would leave it.
        canonical = self._root(duplicate_of) if group is None and duplicate_of is not None else report_id
        self._count(fp, group, canonical, prepared.created_at)
        self.events.rows.extend(prepared.event_rows)
        self.events.rows.append(prepared.imported_event)
        self.sync_reports.rows.append(
            (row[0], file_id, item.position, prepared.copy_key, item.content_hash, 1, fp.hash,
             prepared.link_target, link_state, self.now_db, self.now_db)
        )  # fmt: skip
        self._entry(file_id, item, old, IMPORTED, None, None, report_id)
        self.states[prepared.legacy_id] = _State(
            report_id=report_id,
            version=1,
            synced=True,
            copy_key=prepared.copy_key,
            content_hash=item.content_hash,
            report_version=1,
            source_file=file_id,
            source_position=item.position,
            source_path=path,
            source_kind="lines" if item.line is not None else "document",
            fingerprint=fp.hash,
            link_target=prepared.link_target,
            link_state=link_state,
        )
        self.targets[prepared.legacy_id] = report_id
        self.result.created += 1
        if duplicate_of is not None:
            self.result.grouped += 1
        self.result.warnings += len(prepared.warnings)
        for warning in prepared.warnings[:1]:
            self.result.example("warning", path, item, warning, prepared.legacy_id)

    @staticmethod
    def _event_data(path: str, item: Item, prepared: PreparedReport) -> dict[str, Any]:
        data: dict[str, Any] = {"path": path, "generation": prepared.generation, "legacy_id": prepared.legacy_id}
        if item.line is not None:
            data["line"] = item.line
        if item.index is not None:
            data["index"] = item.index
        if prepared.warnings:
            data["warnings"] = prepared.warnings
        return data

    def _number(self) -> int:
        if is_postgres():
            if not self.numbers:
                cursor = execute("SELECT nextval('bug_reports_number_seq') FROM generate_series(1, 64)", [])
                self.numbers = [r[0] for r in cursor.fetchall()][::-1]
            return self.numbers.pop()
        if self.next_number is None:
            # SQLite writers are serialised by BEGIN IMMEDIATE, so max + 1 cannot race.
            self.next_number = execute("SELECT COALESCE(MAX(number), 0) + 1 FROM bug_reports", []).fetchone()[0]
        number = self.next_number
        self.next_number += 1
        return number

    def _group(self, fp: Fingerprint) -> _Group | None:
        if fp.hash not in self.groups:
            self._fetch_groups([fp.hash])
        return self.groups[fp.hash]

    def _count(self, fp: Fingerprint, group: _Group | None, report_id: uuid.UUID, created_at: datetime) -> None:
        """Count a report in its fingerprint's group, opening the group when it is new."""
        if group is None:
            self.groups[fp.hash] = _Group(None, report_id, 1, created_at, created_at, fp=fp, dirty=True)
            return
        group.occurrences += 1
        group.first_seen_at = min(group.first_seen_at, created_at)
        group.last_seen_at = max(group.last_seen_at, created_at)
        group.dirty = True

    # -- a legacy id that is already imported --

    def _existing(self, part: FilePart, file_id: int, item: Item, old: _Entry | None, state: _State) -> None:
        prepared = item.report
        assert prepared is not None
        path = part.file.path
        same_copy = (state.source_file, state.source_position) == (file_id, item.position)
        if same_copy and state.content_hash == item.content_hash:
            # Recorded copy, re-read after a crash between a report and its entry: nothing to do.
            self._entry(file_id, item, old, IMPORTED, None, None, state.report_id)
            self.result.unchanged += 1
            return
        if same_copy:
            newer = prepared.copy_key >= state.copy_key
        else:
            current = (state.copy_key, state.source_path, state.source_position)
            newer = (prepared.copy_key, path, item.position) > current
        if not newer:
            where = _where(state.source_path, state.source_kind, state.source_position)
            if same_copy:
                message = f"this file now holds an older copy of {prepared.legacy_id} than the one imported from it"
            else:
                message = f"older copy of {prepared.legacy_id}; newer copy is {where}"
            self._entry(file_id, item, old, STALE, STALE_DUPLICATE, message, state.report_id)
            self.result.stale += 1
            return
        self._flush()
        self._update(path, file_id, item, old, state)

    def _update(self, path: str, file_id: int, item: Item, old: _Entry | None, state: _State) -> None:
        prepared = item.report
        assert prepared is not None
        report = BugReport.get_by_id(state.report_id)
        incoming = prepared.values()
        changes = {}
        for name in _UPDATABLE:
            after = incoming.get(name)
            if getattr(report, name) != after:
                changes[name] = after
        conflict = report.version != state.report_version
        added = self._add_history(report.id, prepared.event_rows)
        fp = prepared.fingerprint
        link_target = prepared.link_target
        link_state = state.link_state
        if link_target != state.link_target:
            link_state = LINK_PENDING if link_target else None
        version = report.version
        if not conflict:
            if fp.hash != report.fingerprint:
                changes.update(self._regroup(report, state, fp))
            if changes:
                version = report.version + 1
                sets = ", ".join(f'"{BugReport._meta.fields[n].column_name}" = ?' for n in changes)
                params = [BugReport._meta.fields[n].db_value(v) for n, v in changes.items()]
                execute(
                    f"UPDATE bug_reports SET {sets}, version = ? WHERE id = ? AND version = ?",
                    [*params, version, BugReport.id.db_value(report.id), report.version],
                )
        else:
            self.result.conflicts += 1
        moved = not (state.source_file == file_id and state.source_position == item.position)
        if changes or added or moved or conflict:
            diff = {n: [_brief(getattr(report, n)), _brief(v)] for n, v in changes.items()}
            data = self._event_data(path, item, prepared)
            data["changed"] = diff
            data["events_added"] = added
            if moved and state.source_path:
                data["previous_copy"] = _where(state.source_path, state.source_kind, state.source_position)
            if conflict:
                data["conflict"] = True
                body = (
                    f"legacy copy {path} changed, but the report was changed in bugdesk since it was imported: "
                    f"history added, fields left as they are ({', '.join(diff) or 'none differ'})"
                )
            else:
                body = f"updated from legacy copy {path}: " + (", ".join(changes) or "no field changed")
                if added:
                    body += f"; {added} history item(s) added"
            self._insert_event(report.id, "updated", body, data, to_status=changes.get("status"))
            self.result.updated += 1
        else:
            self.result.unchanged += 1
        if moved and state.source_file is not None:
            self._mark_stale(state, prepared.legacy_id, path, item)
        execute(
            "UPDATE sync_reports SET source_file_id = ?, source_position = ?, copy_key = ?, content_hash = ?, "
            "report_version = ?, fingerprint = ?, link_target = ?, link_state = ?, updated_at = ? WHERE report_id = ?",
            [
                file_id, item.position, prepared.copy_key, item.content_hash,
                version if not conflict else state.report_version,
                fp.hash if not conflict else state.fingerprint, link_target, link_state,
                SyncReport.updated_at.db_value(self.now), BugReport.id.db_value(report.id),
            ],
        )  # fmt: skip
        self._entry(file_id, item, old, IMPORTED, None, None, report.id)
        self.states[prepared.legacy_id] = _State(
            report_id=report.id,
            version=version,
            synced=True,
            copy_key=prepared.copy_key,
            content_hash=item.content_hash,
            report_version=version if not conflict else state.report_version,
            source_file=file_id,
            source_position=item.position,
            source_path=path,
            source_kind="lines" if item.line is not None else "document",
            fingerprint=fp.hash if not conflict else state.fingerprint,
            link_target=link_target,
            link_state=link_state,
        )
        self.result.warnings += len(prepared.warnings)

    def _add_history(self, report_id: uuid.UUID, event_rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert the legacy events the report does not have yet (histories only grow)."""
        cursor = execute(
            "SELECT kind, actor, body, created_at FROM bug_report_events WHERE report_id = ? "
            "AND kind NOT IN ('imported', 'updated')",
            [BugReport.id.db_value(report_id)],
        )
        # Raw database values on both sides: the rows were converted the way the database returns them.
        have = Counter(tuple(r) for r in cursor.fetchall())
        key = str(report_id)
        added = 0
        for row in event_rows:
            signature = (row[1], row[2], row[5], row[7])
            if have[signature] > 0:
                have[signature] -= 1
                continue
            self.events.rows.append((key, *row[1:]))
            added += 1
        self.events.flush()
        return added

    def _regroup(self, report: BugReport, state: _State, fp: Fingerprint) -> dict[str, Any]:
        """Move a report whose fingerprint changed to its new group; returns the column changes."""
        if report.fingerprint:
            execute(
                "UPDATE bug_report_dedup SET occurrences = occurrences - 1 WHERE fingerprint = ? AND occurrences > 1",
                [report.fingerprint],
            )
        group = self._group(fp)
        changes: dict[str, Any] = {"fingerprint": fp.hash}
        if group is None:
            self._count(fp, None, report.id, report.created_at)
            return changes
        self._count(fp, group, report.id, report.created_at)
        if state.link_target is None:
            root = self._root(group.canonical)
            target = root if root != report.id else None
            if target != report.duplicate_of_id:
                changes["duplicate_of"] = target
                self.parents[report.id] = target
        return changes

    def _mark_stale(self, state: _State, legacy_id: str, path: str, item: Item) -> None:
        where = _where(path, "lines" if item.line is not None else "document", item.position)
        message = f"older copy of {legacy_id}; newer copy is {where}"
        execute(
            "UPDATE sync_entries SET outcome = ?, reason = ?, message = ?, updated_at = ? "
            "WHERE file_id = ? AND position = ? AND outcome = ?",
            [STALE, STALE_DUPLICATE, message, SyncEntry.updated_at.db_value(self.now), state.source_file,
             state.source_position, IMPORTED],
        )  # fmt: skip
        key = (state.source_file, state.source_position)
        if key in self.entries:
            self.entries[key].outcome = STALE
        self.result.stale += 1

    def _insert_event(
        self, report_id: uuid.UUID, kind: str, body: str, data: dict[str, Any], to_status: str | None = None
    ) -> None:
        self.events.add(
            {"report": report_id, "kind": kind, "actor": ACTOR, "from_status": None, "to_status": to_status,
             "body": body, "data": data, "created_at": self.now}
        )  # fmt: skip

    # -- writing --

    def _flush(self) -> None:
        self.reports.flush()
        self.events.flush()
        self.sync_reports.flush()
        self.new_entries.flush()
        self.entry_updates.flush()

    def _write_groups(self) -> None:
        new = _Rows(BugReportDedup, _DEDUP_COLUMNS)
        counts = _Rows(BugReportDedup, ("occurrences", "first_seen_at", "last_seen_at"), update_by="id")
        for fp_hash, group in self.groups.items():
            if group is None or not group.dirty:
                continue
            if group.id is None:
                fp = group.fp
                assert fp is not None
                new.add(
                    {"fingerprint": fp_hash, "canonical": group.canonical, "algorithm": fp.algorithm, "kind": fp.kind,
                     "signature": fp.signature, "exception_type": fp.exception_type,
                     "frames": list(fp.frames) or None, "component": fp.component, "route": fp.route,
                     "occurrences": group.occurrences, "first_seen_at": group.first_seen_at,
                     "last_seen_at": group.last_seen_at}
                )  # fmt: skip
            else:
                counts.add(
                    {"occurrences": group.occurrences, "first_seen_at": group.first_seen_at,
                     "last_seen_at": group.last_seen_at},
                    key=group.id,
                )  # fmt: skip
        new.flush()
        counts.flush()

    def _write_files(self, parts: Sequence[FilePart]) -> None:
        by_path: dict[str, list[FilePart]] = defaultdict(list)
        for part in parts:
            by_path[part.file.path].append(part)
        updates = _Rows(SyncFile, _FILE_UPDATE, update_by="id")
        for path, file_parts in by_path.items():
            file_id = self.file_ids[path]
            state = file_parts[-1].file
            old = self.old_files.get(path)
            if old is not None:
                restarted = any(p.file.first_part for p in file_parts)
                entries = sum(len(p.items) for p in file_parts) + (0 if restarted else old.entries)
                recorded = (old.kind, old.size, old.mtime_ns, old.sha256, old.consumed_bytes, old.consumed_lines)
                current = (state.kind, state.size, state.mtime_ns, state.sha256, state.consumed_bytes,
                           state.consumed_lines)  # fmt: skip
                if recorded == current and (old.entries, old.status) == (entries, state.status):
                    continue  # re-read and found as recorded (--verify): nothing to write
                updates.add(
                    {"kind": state.kind, "size": state.size, "mtime_ns": state.mtime_ns, "sha256": state.sha256,
                     "consumed_bytes": state.consumed_bytes, "consumed_lines": state.consumed_lines,
                     "entries": entries, "status": state.status, "updated_at": self.now},
                    key=file_id,
                )  # fmt: skip
            if state.last_part and state.restart and old is not None:
                self._remove_unseen(file_id, state)
        updates.flush()

    def _remove_unseen(self, file_id: int, state: FileState) -> None:
        """Entries of an earlier version of a rewritten file that it no longer holds."""
        updated_at = SyncEntry.updated_at.db_value(self.now)
        if state.kind == "lines":
            execute(
                "UPDATE sync_entries SET outcome = ?, updated_at = ? "
                "WHERE file_id = ? AND position > ? AND outcome <> ?",
                [REMOVED, updated_at, file_id, state.consumed_lines, REMOVED],
            )
            return
        seen = sorted(set(self.seen_positions.get(file_id, [])))
        if len(seen) > 5000:
            return  # a huge array rewritten in place: its stale rows are harmless, checking them is not
        where = f" AND position NOT IN ({_marks(len(seen))})" if seen else ""
        execute(
            f"UPDATE sync_entries SET outcome = ?, updated_at = ? WHERE file_id = ? AND outcome <> ?{where}",
            [REMOVED, updated_at, file_id, REMOVED, *seen],
        )


def _where(path: str, kind: str, position: int | None) -> str:
    if not position:
        return path
    return f"{path} line {position}" if kind == "lines" else f"{path} [{position - 1}]"


def _brief(value: Any) -> Any:
    """A column value for an event's data: JSON-able and short."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    if isinstance(value, dict | list):
        text = str(value)
        return value if len(text) <= 200 else text[:200] + "…"
    return value


# --- archive bookkeeping --------------------------------------------------------------------


def mark_archived(root_id: int, paths: Sequence[str], archive: str, *, now: datetime | None = None) -> int:
    """Record that these files went into a verified archive; returns the rows changed."""
    now = now or utcnow()
    changed = 0
    with transaction():
        for chunk in _chunks(list(paths)):
            changed += (
                SyncFile.update(archived_at=now, archive=archive)
                .where((SyncFile.root == root_id) & SyncFile.path.in_(list(chunk)))
                .execute()
            )
    return changed


def mark_deleted(root_id: int, paths: Sequence[str], *, now: datetime | None = None) -> int:
    """Record that these archived files were removed from the legacy store."""
    now = now or utcnow()
    changed = 0
    with transaction():
        for chunk in _chunks(list(paths)):
            where = (SyncFile.root == root_id) & SyncFile.path.in_(list(chunk))
            changed += SyncFile.update(deleted_at=now).where(where).execute()
    return changed
