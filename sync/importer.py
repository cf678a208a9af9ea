"""`bugdesk sync import`: stream a legacy store into the database in checkpointed batches.

The pipeline, all of it streaming (memory holds a few batches, never the store):

1. :func:`sync.sources.walk` lists files in a fixed order. A file recorded as done whose
   size and mtime are unchanged is skipped without being read (``--verify`` reads it
   anyway and compares hashes); an append-only JSON-lines file is read from where the last
   run stopped.
2. Files are read, decoded, mapped (:func:`sync.mapping.map_entry`), validated and
   fingerprinted (:func:`bugdesk.service.imports.build_report`) by worker processes; the
   results come back in walk order, so every run makes the same decisions in the same order.
3. The main process writes them through :func:`bugdesk.service.imports.apply_batch`, one
   transaction per batch of ``batch_size`` entries together with their bookkeeping rows. A
   killed run leaves whole batches only, and running it again skips what is recorded: the
   end state is that of one uninterrupted run.
4. Once every report is in, legacy ``duplicate_of`` links are resolved
   (:func:`bugdesk.service.imports.resolve_links`).

A dry run does all of it inside one transaction that is rolled back at the end, so its
summary is exactly what a real run would do and nothing is kept.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from typing import Any, Protocol

from bugdesk import deferred
from bugdesk.clock import as_utc, utcnow
from bugdesk.config import Settings
from bugdesk.db import database
from bugdesk.models_sync import FILE_DONE, FILE_PENDING, QUARANTINED, STALE
from bugdesk.service import imports
from bugdesk.service._fast import execute
from bugdesk.service.import_links import LinkResult
from bugdesk.service.import_rows import FilePart, FileState, Item, Rejected
from bugdesk.service.imports import BatchResult, FileRow
from sync.mapping import Record, freshness, map_entry
from sync.reader import EMPTY_FILE, INVALID_JSON, Entry, Quarantine
from sync.sources import FileInfo, LineRange, looks_like_document, plan_lines, read_document, read_lines, stat_file
from sync.sources import walk as walk_files

__all__ = [
    "ImportOptions",
    "ImportSummary",
    "Progress",
    "copy_key",
    "count_files",
    "default_jobs",
    "prepare",
    "run_import",
]

# Reader errors a writer produces while it is still writing (a truncated or empty file).
_HALF_WRITTEN = (INVALID_JSON, EMPTY_FILE)
_FILES_PER_LOOKUP = 256
_DOC_TASK_FILES = 32
_DOC_TASK_BYTES = 4 << 20
_WINDOW_BYTES = 24 << 20
_WAL_PAGES = 16_384  # 64 MiB of 4 KiB pages
# An import allocates millions of short-lived tuples and no cycles worth chasing: the
# default thresholds run the cyclic collector every 700 allocations, ~10 % of the CPU.
_GC_THRESHOLDS = (200_000, 50, 100)
_WINDOW_TASKS = 256


def default_jobs() -> int:
    """Worker processes for reading: every core but the one that writes (at most four); none on one core."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


@dataclass
class ImportOptions:
    """How to run an import; every field has a documented CLI option."""

    batch_size: int = 1000
    jobs: int = field(default_factory=default_jobs)
    settle_seconds: float = 5.0
    verify: bool = False
    dry_run: bool = False
    range_bytes: int = 2 << 20
    # Set the secondary indexes aside while loading and build them once at the end (SQLite; see
    # bugdesk.deferred). None: when the database holds no report yet, or a killed load left them aside.
    bulk: bool | None = None


class Progress(Protocol):
    """Where an import reports how far it got (a progress bar, a log line)."""

    def start(self, total_files: int | None) -> None: ...

    def advance(self, files: int, entries: int) -> None: ...

    def stage(self, text: str) -> None:
        """The run moved on to work that is not reading files (building indexes, linking duplicates)."""


@dataclass
class ImportSummary:
    """What a run did, for the summary table, ``--json`` and the exit code."""

    root: str
    result: BatchResult = field(default_factory=BatchResult)
    links: LinkResult = field(default_factory=LinkResult)
    files_seen: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    entries_read: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # of the writing process (reader processes not included)
    interrupted: bool = False
    dry_run: bool = False
    bulk: bool = False
    index_seconds: float = 0.0  # building the indexes a bulk load set aside
    problems_present: int = 0
    pending_paths: set[str] = field(default_factory=set)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 quarantined or stale entries are recorded for this folder, 2 the run did not finish."""
        if self.interrupted:
            return 2
        return 1 if self.problems_present else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "bulk": self.bulk,
            "index_seconds": round(self.index_seconds, 3),
            "files": {"seen": self.files_seen, "read": self.files_read, "unchanged": self.files_unchanged},
            "entries_read": self.entries_read,
            **self.result.as_dict(),
            "links": {
                "linked": self.links.linked,
                "dangling": self.links.dangling,
                "cycles": self.links.cycles,
                "conflicts": self.links.conflicts,
            },
            "problems_present": self.problems_present,
            "pending_files": sorted(self.pending_paths)[:100],
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "examples": self.result.examples + [{"kind": "warning", **w} for w in self.links.warnings],
        }


# --- records to reports (runs in the workers) -----------------------------------------------

_YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)


def copy_key(record: Record) -> str:
    """:func:`sync.mapping.freshness` as a fixed-width string: of two copies, the larger key is newer."""
    history, updated, rank, standalone, plain, line = freshness(record)
    micros = (as_utc(updated) - _YEAR_ONE) // timedelta(microseconds=1)
    return f"{min(history, 999_999):06d}{micros:018d}{rank + 1:02d}{standalone}{plain}{min(line, 10**10 - 1):010d}"


def prepare(
    record: Record, settings: Settings, *, now: datetime, kind: str = imports.SQLITE
) -> imports.PreparedReport | Rejected:
    """A mapped legacy record as the service layer's input (values as ``create_report`` takes them).

    ``kind`` is the database the rows are built for (``imports.dialect()`` of the writer).
    """
    details: dict[str, Any] = {}
    for name in ("frames", "exception_message", "url", "task"):
        value = getattr(record, name)
        if value:
            details[name] = value
    if record.stacktrace_source == "description":
        details["stacktrace_from"] = "description"
    data = {
        "title": record.title,
        "description": record.description,
        "severity": record.severity,
        "category": record.category,
        "source": record.source,
        "reporter_id": record.reporter_id,
        "assignee_id": record.assignee_id,
        "component": record.component,
        "route": record.route,
        "environment": record.environment,
        "exception_type": record.exception_type,
        "stacktrace": record.stacktrace,
        "trace_id": record.trace_id,
        "request_id": record.request_id,
        "release": record.release_sha or record.release,
        "created_at": record.created_at,
        "details": details,
        "status": record.status,
        "close_reason": record.close_reason,
        "resolution_notes": record.resolution_notes,
        "resolution_commits": record.resolution_commits,
        "updated_at": record.updated_at,
        "resolved_at": record.resolved_at,
        "sla_due_at": record.sla_due_at,
    }
    events = [
        {
            "kind": e.kind,
            "actor": e.actor,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "body": e.body,
            "data": e.data,
            "created_at": e.at,
        }
        for e in record.events
    ]
    return imports.build_report(
        data,
        legacy_id=record.legacy_id,
        generation=record.generation,
        copy_key=copy_key(record),
        source={"path": record.path, "line": record.line, "index": record.index},
        events=events,
        link_target=record.duplicate_of,
        warnings=record.warnings,
        settings=settings,
        kind=kind,
        now=now,
    )


@dataclass(frozen=True, slots=True)
class _Context:
    settings: Settings
    now: datetime
    kind: str


@dataclass(slots=True)
class _DocTask:
    files: list[tuple[FileInfo, int]]  # with the settle cutoff (ns) each was planned with


@dataclass(slots=True)
class _LinesTask:
    info: FileInfo
    rng: LineRange
    first_part: bool
    settle_before_ns: int


def _item_of(entry: Entry, ctx: _Context, young: bool) -> Item:
    if entry.line is not None:
        position = entry.line
    elif entry.index is not None:
        position = entry.index + 1
    else:
        position = 0
    item = Item(
        position=position,
        line=entry.line,
        index=entry.index,
        byte_offset=entry.offset,
        content_hash=entry.content_hash,
        legacy_id=entry.legacy_id,
        generation=entry.generation,
        warnings=list(entry.warnings),
    )
    result = map_entry(entry, now=ctx.now)
    if isinstance(result, Quarantine):
        item.reason, item.message = result.reason, result.message
        item.pending = young and result.reason in _HALF_WRITTEN
        return item
    prepared = prepare(result, ctx.settings, now=ctx.now, kind=ctx.kind)
    if isinstance(prepared, Rejected):
        item.reason, item.message = prepared.reason, prepared.message
    else:
        item.report = prepared
    return item


def _work(task: _DocTask | _LinesTask, ctx: _Context) -> list[FilePart]:
    """Read, map and prepare one task's entries (in a worker process, or inline)."""
    if isinstance(task, _LinesTask):
        return [_lines_part(task, ctx)]
    parts = []
    for info, settle_before_ns in task.files:
        if info.error is not None:
            item = Item(position=0, reason=info.error.reason, message=info.error.message)
            state = FileState(info.rel, "other", 0, 0, None)
            parts.append(FilePart(state, [item]))
            continue
        entries, sha256, size, mtime_ns = read_document(info)
        young = mtime_ns >= settle_before_ns
        items = [_item_of(e, ctx, young) for e in entries]
        status = FILE_PENDING if any(i.pending for i in items) or sha256 is None else FILE_DONE
        kind = "document" if info.framing else "other"
        parts.append(FilePart(FileState(info.rel, kind, size, mtime_ns, sha256, size, 0, status), items))
    return parts


def _lines_part(task: _LinesTask, ctx: _Context) -> FilePart:
    info, rng = task.info, task.rng
    items = [_item_of(e, ctx, False) for e in read_lines(info, rng)]
    if rng.final and rng.empty_file:
        item = Item(position=0, reason=EMPTY_FILE, message=f"JSON-lines file without lines ({rng.size} bytes)")
        item.content_hash = rng.prefix_sha256
        item.pending = rng.mtime_ns >= task.settle_before_ns
        items = [item]
    # An intermediate range records only how far the file was read: with its size set to
    # that offset, a run killed before the last range finds the file changed and goes on.
    size = rng.size if rng.final else rng.end
    status = FILE_DONE if (not rng.final or (rng.complete and not any(i.pending for i in items))) else FILE_PENDING
    state = FileState(
        info.rel,
        "lines",
        size,
        rng.mtime_ns if rng.final else 0,
        rng.prefix_sha256,
        rng.end,
        max(rng.last_line, 0),
        status,
        first_part=task.first_part,
        last_part=rng.final,
        restart=rng.restarted,
    )
    return FilePart(state, items)


def _init_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group; only the main process decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.set_threshold(*_GC_THRESHOLDS)
    # A main process killed with SIGKILL cannot stop its workers, and a worker blocked on
    # sending a result would wait forever: each worker leaves once its parent is gone.
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()


def _exit_with(parent: int) -> None:
    while True:
        time.sleep(0.5)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass


# --- planning (main process) ----------------------------------------------------------------


def count_files(root: str) -> int:
    """How many files a walk of ``root`` will meet (for a progress bar's total); no stat calls."""
    total = 0
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as it:
                for child in it:
                    try:
                        if child.is_dir(follow_symlinks=False):
                            stack.append(child.path)
                            continue
                    except OSError:
                        pass
                    total += 1
        except OSError:
            total += 1
    return total


class _Planner:
    """Turns the walk into read tasks, skipping files recorded as unchanged."""

    def __init__(self, root_id: int, options: ImportOptions, summary: ImportSummary, progress: Progress | None):
        self.root_id = root_id
        self.options = options
        self.summary = summary
        self.progress = progress

    def tasks(self, files: Iterable[FileInfo]) -> Iterator[_DocTask | _LinesTask]:
        doc: list[tuple[FileInfo, int]] = []
        doc_bytes = 0
        for chunk in _chunked(files, _FILES_PER_LOOKUP):
            rows = imports.file_rows(self.root_id, [f.rel for f in chunk])
            for info in chunk:
                self.summary.files_seen += 1
                row = rows.get(info.rel)
                if self._unchanged(info, row):
                    self.summary.files_unchanged += 1
                    self.summary.result.unchanged += row.entries
                    if self.progress is not None:
                        self.progress.advance(1, row.entries)
                    continue
                self.summary.files_read += 1
                settle_before_ns = time.time_ns() - int(self.options.settle_seconds * 1e9)
                if info.error is None and info.framing == "jsonl" and self._as_lines(info, row):
                    if doc:
                        yield _DocTask(doc)
                        doc, doc_bytes = [], 0
                    yield from self._line_tasks(info, row, settle_before_ns)
                    continue
                doc.append((info, settle_before_ns))
                doc_bytes += info.size
                if len(doc) >= _DOC_TASK_FILES or doc_bytes >= _DOC_TASK_BYTES:
                    yield _DocTask(doc)
                    doc, doc_bytes = [], 0
        if doc:
            yield _DocTask(doc)

    def _unchanged(self, info: FileInfo, row: FileRow | None) -> bool:
        return (
            row is not None
            and not self.options.verify
            and info.error is None
            and row.status == FILE_DONE
            and row.size == info.size
            and row.mtime_ns == info.mtime_ns
        )

    @staticmethod
    def _as_lines(info: FileInfo, row: FileRow | None) -> bool:
        if row is not None and row.kind == "lines" and row.consumed_bytes > 0:
            return True
        return not looks_like_document(info.path)

    def _line_tasks(self, info: FileInfo, row: FileRow | None, settle_before_ns: int) -> Iterator[_LinesTask]:
        resume = row is not None and row.kind == "lines" and row.sha256 is not None and not self.options.verify
        ranges = plan_lines(
            info,
            start=row.consumed_bytes if resume else 0,
            first_line=row.consumed_lines + 1 if resume else 1,
            prefix_sha256=row.sha256 if resume else None,
            settle_before_ns=settle_before_ns,
            range_bytes=self.options.range_bytes,
        )
        first = True
        try:
            for rng in ranges:
                yield _LinesTask(info, rng, first and rng.restarted, settle_before_ns)
                first = False
        except OSError as exc:
            # The file vanished or became unreadable mid-scan: record it, go on.
            yield _DocTask([(FileInfo(info.rel, info.path, error=Quarantine("unreadable", str(exc))), 0)])


def _task_bytes(task: _DocTask | _LinesTask) -> int:
    if isinstance(task, _LinesTask):
        return task.rng.end - task.rng.start
    return sum(info.size for info, _ in task.files) + 1024 * len(task.files)


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _results(
    tasks: Iterator[_DocTask | _LinesTask], ctx: _Context, jobs: int, stop: threading.Event | None
) -> Iterator[list[FilePart]]:
    """Task results in task order, from ``jobs`` worker processes (inline when 0)."""
    if jobs <= 0:
        for task in tasks:
            yield _work(task, ctx)
        return
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=get_context("forkserver"), initializer=_init_worker, initargs=(os.getpid(),)
    )
    # Enough work queued that the workers keep reading while a batch is being written, and
    # bounded by input bytes so memory stays flat however fast they read.
    window: deque[tuple[Future, int]] = deque()
    in_flight = 0
    try:
        for task in tasks:
            size = _task_bytes(task)
            window.append((pool.submit(_work, task, ctx), size))
            in_flight += size
            while window and (in_flight >= _WINDOW_BYTES or len(window) >= _WINDOW_TASKS):
                future, size = window.popleft()
                in_flight -= size
                yield future.result()
            if stop is not None and stop.is_set():
                return
        while window:
            yield window.popleft()[0].result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- the run --------------------------------------------------------------------------------


def run_import(
    root: str | os.PathLike[str],
    *,
    settings: Settings,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    paths: Iterable[str] | None = None,
    command: str = "import",
    run_id: int | None = None,
    now: datetime | None = None,
) -> ImportSummary:
    """Import the legacy store under ``root`` (or only ``paths`` below it) into the bound database.

    ``stop`` ends the run after the batch being written (the run is then ``interrupted``).
    With ``run_id`` the batches count towards that open run (a watch session) instead of
    a run of their own. Raises ``FileNotFoundError`` when ``root`` is no directory.
    """
    options = options or ImportOptions()
    root_path = os.path.realpath(os.fspath(root))
    if not os.path.isdir(root_path):
        raise FileNotFoundError(f"legacy store directory not found: {root_path}")
    summary = ImportSummary(root=root_path, dry_run=options.dry_run)
    started, cpu = time.perf_counter(), time.process_time()
    thresholds = gc.get_threshold()
    gc.set_threshold(*_GC_THRESHOLDS)
    try:
        if options.dry_run:
            with database.atomic() as txn:
                _run(root_path, settings, options, progress, stop, paths, command, run_id, now, summary)
                txn.rollback()
        else:
            _run(root_path, settings, options, progress, stop, paths, command, run_id, now, summary)
    finally:
        gc.set_threshold(*thresholds)
    summary.seconds = time.perf_counter() - started
    summary.cpu_seconds = time.process_time() - cpu
    return summary


def _run(
    root_path: str,
    settings: Settings,
    options: ImportOptions,
    progress: Progress | None,
    stop: threading.Event | None,
    paths: Iterable[str] | None,
    command: str,
    run_id: int | None,
    now: datetime | None,
    summary: ImportSummary,
) -> None:
    now = now or utcnow()
    root_id = imports.open_root(root_path, now=now)
    own_run = run_id is None
    if run_id is None:
        run_id = imports.start_run(root_id, command, now=now)
    if paths is None:
        if progress is not None:
            progress.start(count_files(root_path))
        files: Iterable[FileInfo] = walk_files(root_path)
    else:
        files = list(_files_at(root_path, paths))
        if progress is not None:
            progress.start(len(files))
    ctx = _Context(settings, now, imports.dialect())
    planner = _Planner(root_id, options, summary, progress)
    status, error = "completed", None
    checkpoint = _wal_checkpoint_pages(_WAL_PAGES)
    summary.bulk = _use_bulk(options, own_run and paths is None)
    if summary.bulk:
        deferred.defer(database.obj)
    elif not options.dry_run and deferred.supported(database.obj):
        deferred.restore(database.obj, orphaned_only=True)
    try:
        _write(root_id, run_id, planner.tasks(files), ctx, options, summary, progress, stop)
        # Before the links: they look reports up by duplicate_of_id.
        _restore_indexes(summary, progress)
        if stop is not None and stop.is_set():
            summary.interrupted = True
        else:
            summary.links = imports.resolve_links(now=now)
    except BaseException as exc:
        summary.interrupted = True
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if summary.interrupted and status == "completed":
            status = "interrupted"
        with contextlib.suppress(Exception):  # a failed database cannot rebuild; the next command that opens it will
            _restore_indexes(summary, progress)
        _wal_checkpoint_pages(checkpoint)
        try:
            if own_run:
                # A count over the folder's problem rows (0.3 s at a million entries): worth it
                # for a run's exit code, not after every few files a watch session imports.
                summary.problems_present = _problems_present(root_id)
                imports.finish_run(run_id, status, summary.as_dict(), error=error)
        except Exception:  # the database itself may be what failed; the run's row then stays "running"
            pass


def _write(
    root_id: int,
    run_id: int,
    tasks: Iterator[_DocTask | _LinesTask],
    ctx: _Context,
    options: ImportOptions,
    summary: ImportSummary,
    progress: Progress | None,
    stop: threading.Event | None,
) -> None:
    batch: list[FilePart] = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        if not batch:
            return
        result = imports.apply_batch(
            root_id, batch, settings=ctx.settings, run_id=run_id, cursor=batch[-1].file.path, now=ctx.now
        )
        summary.result.merge(result)
        for part in batch:
            if part.file.last_part:
                if part.file.status == FILE_PENDING:
                    summary.pending_paths.add(part.file.path)
                else:
                    summary.pending_paths.discard(part.file.path)
        if progress is not None:
            progress.advance(sum(1 for p in batch if p.file.last_part), sum(len(p.items) for p in batch))
        batch, size = [], 0

    for parts in _results(tasks, ctx, options.jobs, stop):
        for part in parts:
            batch.append(part)
            size += len(part.items)
            summary.entries_read += len(part.items)
        if size >= options.batch_size:
            flush()
            if stop is not None and stop.is_set():
                return
    flush()


def _use_bulk(options: ImportOptions, whole_store: bool) -> bool:
    """Whether this run sets indexes aside: a backfill (a whole store, written for real) on a database that can."""
    if options.dry_run or not whole_store or not deferred.supported(database.obj):
        return False
    if options.bulk is not None:
        return options.bulk
    return bool(deferred.recorded(database.obj)) or execute("SELECT 1 FROM bug_reports LIMIT 1", []).fetchone() is None


def _restore_indexes(summary: ImportSummary, progress: Progress | None) -> None:
    if not summary.bulk or not deferred.recorded(database.obj):
        return
    if progress is not None:
        progress.stage("building indexes")
    started = time.perf_counter()
    deferred.restore(database.obj)
    summary.index_seconds += time.perf_counter() - started


def _wal_checkpoint_pages(pages: int | None) -> int | None:
    """Set SQLite's WAL auto-checkpoint threshold on this connection; returns the previous one.

    The default (1,000 pages) checkpoints after nearly every batch, copying and syncing
    pages that the next batch dirties again; a larger WAL between checkpoints writes each
    page once. Only this connection changes, and only while the import runs.
    """
    if pages is None or imports.dialect() != imports.SQLITE:
        return None
    previous = database.execute_sql("PRAGMA wal_autocheckpoint").fetchone()[0]
    database.execute_sql(f"PRAGMA wal_autocheckpoint = {int(pages)}")
    return previous


def _files_at(root_path: str, paths: Iterable[str]) -> Iterator[FileInfo]:
    """The files at (or, for a directory, below) the given paths, in walk order; vanished ones are left out."""
    seen: set[str] = set()
    for rel in sorted({p.strip("/") for p in paths}):
        full = os.path.join(root_path, rel)
        if os.path.isdir(full) and not os.path.islink(full):
            found: Iterable[FileInfo] = (
                FileInfo(rel + "/" + f.rel, f.path, f.size, f.mtime_ns, f.framing, f.error) for f in walk_files(full)
            )
        elif os.path.lexists(full):
            found = [stat_file(full, rel)]
        else:
            continue
        for info in found:
            if info.rel not in seen:
                seen.add(info.rel)
                yield info


def _problems_present(root_id: int) -> int:
    # "outcome <> 'imported'" spelled as in the partial index, so SQLite reads only problem rows.
    cursor = execute(
        "SELECT COUNT(*) FROM sync_entries e JOIN sync_files f ON f.id = e.file_id "
        "WHERE e.outcome <> 'imported' AND e.outcome IN (?, ?) AND f.root_id = ?",
        [QUARANTINED, STALE, root_id],
    )
    return cursor.fetchone()[0]
