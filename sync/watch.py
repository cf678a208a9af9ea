"""`bugdesk sync watch`: keep importing a legacy store while the old writers still write to it.

The compatibility layer of the cut-over. It runs the same import as ``bugdesk sync import``
(same rules, same bookkeeping, so it can be stopped and restarted at any time, and an
import and a watch never duplicate each other's work):

1. On start, a catch-up import of the whole folder. Files recorded as unchanged (size and
   mtime) are not read again, so a restart costs a directory walk, not a re-import.
2. Then every change the operating system reports is imported on its own, within the 2
   seconds the rollout promises: events are collected for ``debounce_ms`` (a burst of
   writes becomes one import) and only the changed files are read. Lines appended to a
   JSON-lines inbox are the only part of it read again.
3. A file that is being written is retried, not quarantined: broken JSON (truncated or
   empty) in a file modified less than ``settle_seconds`` ago is recorded as ``pending``
   and looked at again every ``retry_seconds`` until it parses or has been quiet for the
   settle time (then it is quarantined like in an import). A last line of a JSON-lines file
   without its newline is not consumed until the newline comes or the file went quiet.
4. SIGINT (Ctrl-C) and SIGTERM set ``stop``: the batch being written commits, the watch
   run is recorded as completed, and :func:`watch` returns.

Why watchfiles: a maintained library (uvicorn's reloader uses it too) backed by the Rust
``notify`` crate (inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on Windows), so
a store of a million files costs no periodic scan. Kernel notifications do not cross network filesystems (NFS, SMB,
some container bind mounts): ``poll=True`` switches watchfiles to its polling backend there.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import watchfiles

from bugdesk.config import Settings
from bugdesk.service import imports
from sync.importer import ImportOptions, ImportSummary, run_import

__all__ = ["WatchOptions", "watch"]


@dataclass
class WatchOptions:
    """Knobs of a watch session (each has a CLI option and an environment variable)."""

    debounce_ms: int = 200
    retry_seconds: float = 1.0
    poll: bool = False
    poll_delay_ms: int = 300


def watch(
    root: str | os.PathLike[str],
    *,
    settings: Settings,
    stop: threading.Event,
    options: ImportOptions | None = None,
    watch_options: WatchOptions | None = None,
    on_import: Callable[[ImportSummary], None] | None = None,
    ready: threading.Event | None = None,
) -> int:
    """Import ``root`` and then every change below it until ``stop`` is set; returns the run id.

    ``on_import`` is called with the summary of the catch-up and of every later import
    that did something; ``ready`` is set once the catch-up is done and changes are watched.
    """
    options = options or ImportOptions()
    watch_options = watch_options or WatchOptions()
    root_path = os.path.realpath(os.fspath(root))
    if not os.path.isdir(root_path):
        raise FileNotFoundError(f"legacy store directory not found: {root_path}")
    root_id = imports.open_root(root_path)
    run_id = imports.start_run(root_id, "watch")
    status, error = "completed", None
    try:
        _session(root_path, root_id, run_id, settings, stop, options, watch_options, on_import, ready)
    except BaseException as exc:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        imports.finish_run(run_id, status, error=error)
    return run_id


def _session(
    root_path: str,
    root_id: int,
    run_id: int,
    settings: Settings,
    stop: threading.Event,
    options: ImportOptions,
    watch_options: WatchOptions,
    on_import: Callable[[ImportSummary], None] | None,
    ready: threading.Event | None,
) -> None:
    # The catch-up may read many files in worker processes; later imports are a few files each.
    incremental = dataclasses.replace(options, jobs=0)

    def run(paths: set[str] | None) -> None:
        summary = run_import(
            root_path,
            settings=settings,
            options=options if paths is None else incremental,
            stop=stop,
            paths=paths,
            command="watch",
            run_id=run_id,
        )
        if paths is None:
            pending.clear()
        pending.difference_update(paths or ())
        pending.update(summary.pending_paths)
        if on_import is not None and (paths is None or summary.entries_read or summary.result.created):
            on_import(summary)

    pending: set[str] = set()
    changes_seen = watchfiles.watch(
        root_path,
        watch_filter=None,  # backups such as "X.json~" are legacy copies too
        debounce=watch_options.debounce_ms,
        step=50,
        stop_event=stop,
        rust_timeout=int(watch_options.retry_seconds * 1000),
        yield_on_timeout=True,
        raise_interrupt=False,
        force_polling=watch_options.poll or None,
        poll_delay_ms=watch_options.poll_delay_ms,
        ignore_permission_denied=True,
    )
    # Watching starts before the catch-up, so nothing written while it runs is missed: the
    # first wait returns (at the latest after retry_seconds) and its changes are kept.
    first = next(changes_seen, set())
    run(None)
    if ready is not None:
        ready.set()
    next_retry = time.monotonic() + watch_options.retry_seconds
    for changes in itertools.chain([first], changes_seen):
        if stop.is_set():
            break
        paths = {_relative(root_path, path) for change, path in changes if change != watchfiles.Change.deleted}
        paths.discard(None)
        if pending and time.monotonic() >= next_retry:
            paths |= pending
            next_retry = time.monotonic() + watch_options.retry_seconds
        if paths:
            run(paths)  # type: ignore[arg-type]


def _relative(root_path: str, path: str) -> str | None:
    rel = os.path.relpath(path, root_path)
    if rel == "." or rel.startswith(".."):
        return None
    return rel.replace(os.sep, "/")
