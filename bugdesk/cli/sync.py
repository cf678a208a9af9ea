"""`bugdesk sync import|watch|archive|report`: the bridge from the legacy JSON store.

Thin commands over ``sync.importer``, ``sync.watch`` and ``sync.archive``; the rollout
playbook in docs/rollout.md says when to run which. Options that tune a stage can also come
from the environment (``BUGDESK_SYNC_*``), so a service unit or a cron line needs no flags.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from bugdesk.cli._app import JsonOption, app, console, database, err_console, fail, print_json

sync_app = typer.Typer(
    help="The legacy JSON store: backfill import, watch during the cut-over, verified archive, quarantine report.",
    no_args_is_help=True,
)
app.add_typer(sync_app, name="sync")

Folder = Annotated[
    Path,
    typer.Argument(help="The legacy store folder (paths are recorded relative to it).", file_okay=False, exists=True),
]
BatchSize = Annotated[
    int,
    typer.Option("--batch-size", min=1, envvar="BUGDESK_SYNC_BATCH_SIZE", help="Entries per transaction (checkpoint)."),
]
Jobs = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        min=0,
        envvar="BUGDESK_SYNC_JOBS",
        help="Worker processes reading files; 0 reads in the writing process (default: cores - 1, at most 4).",
        show_default=False,
    ),
]
Settle = Annotated[
    float,
    typer.Option(
        "--settle",
        min=0,
        envvar="BUGDESK_SYNC_SETTLE_SECONDS",
        help="A broken file modified less than this many seconds ago is pending (retried), not quarantined.",
    ),
]


# --- progress -------------------------------------------------------------------------------


class _Plain:
    """Progress as a log line every few seconds (output that is not a terminal)."""

    def __init__(self, every: float = 10.0) -> None:
        self.every = every
        self.files = self.entries = 0
        self.total: int | None = None
        self.started = self.last = time.monotonic()

    def start(self, total_files: int | None) -> None:
        self.total = total_files

    def advance(self, files: int, entries: int) -> None:
        self.files += files
        self.entries += entries
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = self.entries / max(now - self.started, 1e-9)
            of = f"/{self.total:,}" if self.total else ""
            line = f"{self.files:,}{of} files, {self.entries:,} entries, {rate:,.0f} entries/s"
            err_console.print(line, highlight=False)

    def stage(self, text: str) -> None:
        err_console.print(f"{self.files:,} files, {self.entries:,} entries read; {text}", highlight=False)


class _Bar:
    """A rich progress bar: files done of the total, entries per second, elapsed and ETA."""

    def __init__(self, progress: Any) -> None:
        self.progress = progress
        self.task = progress.add_task("importing", total=None, entries=0, rate=0.0)
        self.entries = 0
        self.started = time.monotonic()

    def start(self, total_files: int | None) -> None:
        self.progress.update(self.task, total=total_files)

    def advance(self, files: int, entries: int) -> None:
        self.entries += entries
        rate = self.entries / max(time.monotonic() - self.started, 1e-9)
        self.progress.update(self.task, advance=files, entries=self.entries, rate=rate)

    def stage(self, text: str) -> None:
        self.progress.update(self.task, description=text)


@contextmanager
def _progress(enabled: bool | None) -> Iterator[Any]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    terminal = err_console.is_terminal if enabled is None else enabled
    if not terminal:
        yield _Plain() if enabled is None else None
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[entries]:,} entries  {task.fields[rate]:,.0f}/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        yield _Bar(progress)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set an event instead of raising: the batch being written commits first."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: leave now
        stop.set()
        err_console.print(f"{signal.Signals(signum).name}: stopping after the current batch", highlight=False)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --- import ---------------------------------------------------------------------------------


@sync_app.command("import")
def sync_import(
    path: Folder,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and report what would happen; write nothing.")
    ] = False,
    batch_size: BatchSize = 1000,
    jobs: Jobs = None,
    settle: Settle = 5.0,
    verify: Annotated[
        bool, typer.Option("--verify", help="Re-read files whose size and mtime are unchanged and compare hashes.")
    ] = False,
    bulk: Annotated[
        bool | None,
        typer.Option(
            "--bulk/--no-bulk",
            help="SQLite: set secondary indexes aside while loading, build them once at the end "
            "(default: when the database holds no report yet, or a killed bulk load is being resumed).",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress bar (default: on a terminal; log lines otherwise)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import every report of a legacy JSON store (the backfill); safe to run again and to resume.

    Bad files are quarantined with a reason and never stop the run; `bugdesk sync report` lists them.

    Each batch is one transaction: kill the import at any time and run the same command again.

    Exit codes: 0 clean; 1 quarantined entries or stale duplicate copies are recorded for this folder;
    2 the run failed or was interrupted (Ctrl-C, SIGTERM).

    Example: bugdesk sync import /srv/legacy/reports --dry-run
    """
    from sync.importer import ImportOptions, default_jobs, run_import

    options = ImportOptions(
        batch_size=batch_size,
        jobs=default_jobs() if jobs is None else jobs,
        settle_seconds=settle,
        verify=verify,
        dry_run=dry_run,
        bulk=bulk,
    )
    # Indexes a killed bulk load left aside are the resumed import's to take over, not to rebuild first.
    with database(restore_deferred=False), _stop_on_signals() as stop, _progress(progress) as bar:
        try:
            summary = run_import(path, settings=_settings(), options=options, progress=bar, stop=stop)
        except Exception as exc:  # the run itself failed: exit 2 with the reason
            fail(f"import failed: {type(exc).__name__}: {exc}")
    if as_json:
        print_json(summary.as_dict())
    else:
        _print_summary(summary)
    raise typer.Exit(summary.exit_code)


def _settings() -> Any:
    from bugdesk.cli._app import state

    return state.settings


def _print_summary(summary: Any) -> None:
    data = summary.as_dict()
    title = "dry run: nothing was written" if summary.dry_run else "import summary"
    if summary.interrupted:
        title += " (interrupted: run the same command again to finish)"
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    files = f"{summary.files_seen:,} / {summary.files_read:,} / {summary.files_unchanged:,}"
    rows = [
        ("files seen / read / unchanged", files),
        ("imported", data["imported"]),
        ("updated", data["updated"]),
        ("unchanged entries", data["unchanged"]),
        ("duplicates grouped", data["duplicates_grouped"]),
        ("stale duplicate copies", data["stale_duplicates"]),
        ("duplicate_of links resolved / dangling", f"{summary.links.linked} / {summary.links.dangling}"),
        ("skipped (not reports)", data["skipped"]),
        ("pending (being written, retried later)", data["pending"]),
        ("conflicts (changed in bugdesk, kept)", data["conflicts"]),
        ("warnings", data["warnings"]),
    ]
    rows += [(f"quarantined: {reason}", n) for reason, n in data["quarantined"].items()]
    rate = summary.entries_read / max(summary.seconds, 1e-9)
    rows.append(("time", f"{summary.seconds:.1f} s ({rate:,.0f} entries/s)"))
    for what, count in rows:
        table.add_row(what, f"{count:,}" if isinstance(count, int) else str(count))
    console.print(table)
    for example in data["examples"][:10]:
        where = example.get("path") or example.get("legacy_id") or ""
        if example.get("line") is not None:
            where += f" line {example['line']}"
        if example.get("index") is not None:
            where += f" [{example['index']}]"
        console.print(f"  {example['kind']}: {where}: {example['message']}", highlight=False, soft_wrap=True)
    if summary.problems_present and summary.dry_run:
        console.print(f"{summary.problems_present:,} quarantined or stale entries would be recorded")
    elif summary.problems_present:
        console.print(f"{summary.problems_present:,} quarantined or stale entries recorded: see `bugdesk sync report`")


# --- watch ----------------------------------------------------------------------------------


@sync_app.command("watch")
def sync_watch(
    path: Folder,
    poll: Annotated[
        bool,
        typer.Option("--poll", envvar="BUGDESK_SYNC_POLL", help="Poll instead of kernel notifications (NFS, SMB)."),
    ] = False,
    debounce_ms: Annotated[
        int, typer.Option("--debounce-ms", min=0, envvar="BUGDESK_SYNC_DEBOUNCE_MS", help="Collect events this long.")
    ] = 200,
    settle: Settle = 5.0,
    batch_size: BatchSize = 1000,
    jobs: Jobs = None,
) -> None:
    """Import the folder, then every new or changed file within 2 seconds, until Ctrl-C or SIGTERM.

    Half-written files are retried, not quarantined. A restart imports nothing twice. One log line per import.

    Exit codes: 0 stopped cleanly; 2 the watch failed.

    Example: bugdesk sync watch /srv/legacy/reports
    """
    from sync.importer import ImportOptions, default_jobs
    from sync.watch import WatchOptions, watch

    options = ImportOptions(batch_size=batch_size, jobs=default_jobs() if jobs is None else jobs, settle_seconds=settle)
    watch_options = WatchOptions(debounce_ms=debounce_ms, poll=poll)

    def report(summary: Any) -> None:
        data = summary.as_dict()
        quarantined = sum(data["quarantined"].values())
        err_console.print(
            f"{time.strftime('%H:%M:%S')} {summary.files_read} file(s) read: {data['imported']} imported, "
            f"{data['updated']} updated, {data['stale_duplicates']} stale, {quarantined} quarantined, "
            f"{data['pending']} pending",
            highlight=False,
        )

    with database(), _stop_on_signals() as stop:
        try:
            run_id = watch(
                path, settings=_settings(), stop=stop, options=options, watch_options=watch_options, on_import=report
            )
        except Exception as exc:
            fail(f"watch failed: {type(exc).__name__}: {exc}")
    err_console.print(f"watch stopped (run {run_id})", highlight=False)


# --- archive --------------------------------------------------------------------------------


@sync_app.command("archive")
def sync_archive(
    path: Folder,
    to: Annotated[Path, typer.Option("--to", help="The archive to write (a new .tar.gz).", dir_okay=False)],
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove archived files once the archive is written and verified.")
    ] = False,
    include_quarantined: Annotated[
        bool,
        typer.Option("--include-quarantined", help="With --delete, also remove quarantined and non-report files."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Archive the imported legacy files into a verified tar.gz with a manifest; optionally remove them.

    Only files whose import is recorded and whose sha256 still matches go in; --delete removes them only
    after the archive was read back and verified. Files never imported, pending or changed since stay, listed.

    Exit codes: 0 every file archived (and removed with --delete); 1 some files were kept (listed);
    2 the archive failed (nothing was deleted).

    Example: bugdesk sync archive /srv/legacy/reports --to legacy-2025-11.tar.gz --delete
    """
    from sync.archive import ArchiveError, archive

    with database():
        try:
            summary = archive(path, to, delete=delete, include_quarantined=include_quarantined)
        except (ArchiveError, OSError) as exc:
            fail(f"archive failed, nothing was deleted: {exc}")
    try:
        if as_json:
            print_json(summary.as_dict())
        else:
            console.print(
                f"archived {summary.archived:,} files ({summary.archived_bytes:,} bytes) into {summary.archive}; "
                f"deleted {summary.deleted:,}",
                highlight=False,
            )
            for reason, count in sorted(summary.kept.items()):
                console.print(f"kept ({reason}): {count:,}", highlight=False)
            for i, kept in enumerate(summary.kept_files()):
                if i == 50:
                    console.print("… (all of them with --json)")
                    break
                console.print(f"  {kept['reason']}: {kept['path']}", highlight=False)
    finally:
        summary.close()
    raise typer.Exit(summary.exit_code)


# --- report ---------------------------------------------------------------------------------


@sync_app.command("report")
def sync_report(
    root: Annotated[
        Path | None, typer.Option("--root", help="Only entries of this imported folder.", file_okay=False)
    ] = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", help="Only these reasons (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """List quarantined entries, stale duplicate copies, skipped non-report files and pending files.

    --json prints an array of objects: path (relative to the imported folder), line (JSON lines), index (arrays),
    legacy_id, reason, message, outcome, root, report_id, seen_at.

    Example: bugdesk sync report --json
    """
    from bugdesk.service.imports import problems

    root_path = str(root.resolve()) if root is not None else None
    with database():
        rows = [r for r in problems(root_path) if not reason or r["reason"] in reason]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"sync report: {len(rows):,} entries")
    for column in ("path", "line", "index", "legacy id", "outcome", "reason", "message"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row["path"],
            "" if row["line"] is None else str(row["line"]),
            "" if row["index"] is None else str(row["index"]),
            row["legacy_id"] or "",
            row["outcome"],
            row["reason"] or "",
            row["message"] or "",
        )
    console.print(table)
