"""`bugdesk serve --workers N`: each worker listens on a socket of its own, and a worker that dies is replaced."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.apilive import free_port, submission, wait_until

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads sockets and processes from /proc")


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _sockets(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets whose local port is ``port`` in ``state`` (01 established, 0A listening)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                    inodes.add(fields[9])
    return inodes


def _listeners(port: int) -> int:
    return len(_sockets(port, "0A"))


def _connections_per_worker(server_pid: int, port: int) -> dict[int, int]:
    established = _sockets(port, "01")
    counts = {}
    for child in _children(server_pid):
        held = 0
        with contextlib.suppress(FileNotFoundError):
            for fd in os.listdir(f"/proc/{child}/fd"):
                with contextlib.suppress(FileNotFoundError):
                    link = os.readlink(f"/proc/{child}/fd/{fd}")
                    held += link.startswith("socket:[") and link[8:-1] in established
        counts[child] = held
    return counts


@contextlib.contextmanager
def _serve(tmp_path: Path, workers: int) -> Iterator[tuple[subprocess.Popen, int]]:
    port = free_port()
    env = {**os.environ, "BUGDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"}
    command = [sys.executable, "-m", "bugdesk", "serve", "--port", str(port), "--workers", str(workers)]
    proc = subprocess.Popen([*command, "--log-level", "warning"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return proc.poll() is not None

    try:
        # Each worker imports the app anew (spawn): slow on a busy machine.
        wait_until(healthy, timeout=120, what="bugdesk serve --workers")
        assert proc.poll() is None, "bugdesk serve exited"
        if workers > 1:
            wait_until(lambda: _listeners(port) == workers, timeout=120, what="every worker listening")
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit status waits for whoever adopted it)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _worker_pids(proc: subprocess.Popen) -> set[int]:
    # spawn also starts multiprocessing's resource tracker; the workers are the children running bugdesk.
    return {p for p in _children(proc.pid) if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()}


def test_supervisor_killed_takes_its_workers_with_it(tmp_path):
    with _serve(tmp_path, workers=2) as (proc, _port):
        workers = _worker_pids(proc)
        proc.kill()
        proc.wait()
        wait_until(lambda: not any(map(_running, workers)), timeout=60, what="workers gone")
    assert workers and not any(map(_running, workers))


def test_two_workers_share_the_connections_and_store_every_create_once(tmp_path):
    from bugdesk import db as dbmod
    from bugdesk.models import BugReport, BugReportEvent
    from bugdesk.service import tokens

    with dbmod.connected(f"sqlite:///{tmp_path / 'w.db'}"):
        _, secret = tokens.create_token("writer", "read,write")
    with _serve(tmp_path, workers=2) as (proc, port):
        headers = {"Authorization": f"Bearer {secret}"}
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) for _ in range(16)]
        try:
            answers = [c.post("/api/bug-reports", json=submission()) for c in clients for _ in range(3)]
            per_worker = {pid: n for pid, n in _connections_per_worker(proc.pid, port).items() if n}
        finally:
            for client in clients:
                client.close()
    # One listening socket shared by the workers let the first to wake take nearly all of them;
    # with a socket each, all 16 landing on one worker has a chance of 2 in 65,536.
    assert sum(per_worker.values()) == 16
    assert len(per_worker) == 2, per_worker
    assert [a.status_code for a in answers] == [201] * 48, answers[0].text
    assert len({answer.json()["submission"]["number"] for answer in answers}) == 48
    with dbmod.connected(f"sqlite:///{tmp_path / 'w.db'}"):
        assert BugReport.select().count() == 48
        assert BugReportEvent.select().where(BugReportEvent.kind == "created").count() == 48


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(tmp_path):
    with _serve(tmp_path, workers=2) as (proc, port):
        victim = min(_worker_pids(proc))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(_worker_pids(proc) - {victim}) == 2, what="a replacement worker")
        wait_until(lambda: _listeners(port) == 2, timeout=120, what="the replacement listening")
        answers = [httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).status_code for _ in range(20)]
        assert answers == [200] * 20
        workers = _worker_pids(proc)
        assert victim not in workers
    assert proc.returncode == 0
    assert not any(map(_running, workers))


def test_a_port_in_use_is_refused_with_a_clear_message(tmp_path):
    with _serve(tmp_path, workers=1) as (_proc, port):
        result = subprocess.run(
            [sys.executable, "-m", "bugdesk", "serve", "--port", str(port), "--workers", "2"],
            cwd=tmp_path,
            env={**os.environ, "BUGDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stdout + result.stderr
