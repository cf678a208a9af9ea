"""`bugdesk sync watch`: files written after it starts are imported within 2 seconds, half-written files
wait, a restart duplicates nothing, and SIGINT/SIGTERM stop it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bugdesk import db as dbmod
from bugdesk.config import Settings
from bugdesk.db import database
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.models_sync import SYNC_MODELS, SyncEntry, SyncRun
from sync.importer import ImportOptions
from sync.watch import WatchOptions, watch

OLD = time.time() - 3600


@pytest.fixture
def db(db_url: str) -> Iterator[Any]:
    with dbmod.connected(db_url) as connected:
        if db_url.startswith("postgres"):
            tables = ", ".join(f'"{m._meta.table_name}"' for m in SYNC_MODELS)
            connected.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        yield connected


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


def gen3(legacy_id: str, title: str | None = None) -> dict[str, Any]:
    return {
        "schema": "bugreport/3",
        "id": legacy_id,
        "title": title or f"watch report {legacy_id}",
        "description": None,
        "severity": "low",
        "status": "new",
        "source": "agent",
        "reporter_id": "agent:sentinel-1",
        "created_at": "2025-06-01T08:00:00Z",
        "updated_at": "2025-06-01T08:00:00Z",
        "events": [],
    }


def wait_for(predicate: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``predicate`` held, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def imported(legacy_id: str) -> bool:
    return BugReport.select().where(BugReport.legacy_id == legacy_id).exists()


class Watcher:
    """`watch` in a thread of this process, on its own connection to the test database."""

    def __init__(self, root: Path) -> None:
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(root,), daemon=True)

    def _run(self, root: Path) -> None:
        database.connect(reuse_if_open=True)
        try:
            watch(
                root,
                settings=Settings(),
                stop=self.stop,
                ready=self.ready,
                options=ImportOptions(jobs=0, settle_seconds=5),
                watch_options=WatchOptions(retry_seconds=0.5),
            )
        except BaseException as exc:
            self.error = exc
        finally:
            database.close()

    def __enter__(self) -> Watcher:
        self.thread.start()
        assert self.ready.wait(30), "the catch-up import did not finish"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "watch did not stop"
        assert self.error is None, self.error


def test_files_written_after_the_watch_starts_are_imported_within_two_seconds(db, store: Path) -> None:
    (store / "before.json").write_text(json.dumps(gen3("BEFORE")))
    with Watcher(store):
        assert imported("BEFORE")
        (store / "2025" / "06").mkdir(parents=True)
        (store / "2025" / "06" / "new.json").write_text(json.dumps(gen3("NEW")))
        latency = wait_for(lambda: imported("NEW"), 10)
        assert latency is not None and latency < 2.0, f"imported after {latency} s"
        with open(store / "inbox.jsonl", "a", encoding="utf-8") as inbox:
            inbox.write(json.dumps(gen3("LINE1")) + "\n")
        assert (wait_for(lambda: imported("LINE1"), 10) or 99) < 2.0
        with open(store / "inbox.jsonl", "a", encoding="utf-8") as inbox:
            inbox.write(json.dumps(gen3("LINE2")) + "\n")
        assert (wait_for(lambda: imported("LINE2"), 10) or 99) < 2.0
    lines = SyncEntry.select().where(SyncEntry.legacy_id.in_(["LINE1", "LINE2"]))
    assert sorted(e.line for e in lines) == [1, 2]


def test_a_half_written_file_is_retried_not_quarantined(db, store: Path) -> None:
    with Watcher(store):
        path = store / "slow.json"
        text = json.dumps(gen3("SLOW"))
        path.write_text(text[:25])  # the writer stops half-way for a moment
        assert wait_for(lambda: SyncEntry.select().where(SyncEntry.outcome == "pending").exists(), 10) is not None
        assert not SyncEntry.select().where(SyncEntry.outcome == "quarantined").exists()
        path.write_text(text)
        assert wait_for(lambda: imported("SLOW"), 10) is not None
        assert not SyncEntry.select().where(SyncEntry.outcome.in_(["pending", "quarantined"])).exists()


def test_a_restarted_watch_imports_nothing_twice(db, store: Path) -> None:
    for i in range(3):
        (store / f"{i}.json").write_text(json.dumps(gen3(f"R{i}")))
        os.utime(store / f"{i}.json", (OLD, OLD))
    with Watcher(store):
        (store / "late.json").write_text(json.dumps(gen3("LATE")))
        assert wait_for(lambda: imported("LATE"), 10) is not None
    counts = (BugReport.select().count(), BugReportEvent.select().count())
    with Watcher(store):
        pass
    assert (BugReport.select().count(), BugReportEvent.select().count()) == counts == (4, 4)
    assert [r.status for r in SyncRun.select().order_by(SyncRun.id)] == ["completed", "completed"]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_command_stops_cleanly_on_sigint_and_sigterm(db, db_url: str, store: Path, signum: int) -> None:
    (store / "a.json").write_text(json.dumps(gen3("A")))
    env = {**os.environ, "BUGDESK_DATABASE_URL": db_url}
    child = subprocess.Popen(
        [sys.executable, "-m", "bugdesk", "sync", "watch", str(store), "--jobs", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_for(lambda: imported("A"), 30) is not None
        (store / "b.json").write_text(json.dumps(gen3("B")))
        assert wait_for(lambda: imported("B"), 10) is not None
        child.send_signal(signum)
        _, err = child.communicate(timeout=15)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err.decode()
    assert b"watch stopped" in err
    assert SyncRun.select().where(SyncRun.command == "watch").get().status == "completed"
