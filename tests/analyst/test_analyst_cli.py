"""`bugdesk datasette` and `bugdesk export sqlite` on the command line, and a real server over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playhouse.migrations import Runner
from typer.testing import CliRunner

from bugdesk import db as dbmod
from bugdesk.analyst import serve
from bugdesk.cli import app

runner = CliRunner()


@pytest.fixture
def started(monkeypatch) -> list[dict]:
    """Stands in for uvicorn: records what would have been served instead of serving it."""
    calls: list[dict] = []
    monkeypatch.setattr(serve, "serve", lambda ds, *, host, port: calls.append({"ds": ds, "host": host, "port": port}))
    return calls


@pytest.fixture
def live_file(tmp_path) -> Path:
    path = tmp_path / "bugdesk.db"
    with dbmod.connected(str(path)):
        pass
    return path


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_hosts_are_recognised(host):
    assert serve.is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "localhost.evil.net"])
def test_other_hosts_are_not_loopback(host):
    assert not serve.is_loopback(host)


def test_datasette_serves_the_live_file_read_only_on_loopback_by_default(live_file, started):
    result = runner.invoke(app, ["--db", str(live_file), "datasette"])
    assert result.exit_code == 0, result.output
    (call,) = started
    assert (call["host"], call["port"]) == ("127.0.0.1", 8001)
    database = call["ds"].get_database("bugdesk")
    assert database.is_mutable and Path(database.path) == live_file.resolve()
    assert "read-only" in result.output


def test_a_non_loopback_host_is_refused_without_starting(live_file, started):
    result = runner.invoke(app, ["--db", str(live_file), "datasette", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "not a loopback address" in result.output and "--allow-remote" in result.output
    assert started == []


def test_a_non_loopback_host_is_served_when_forced_with_a_warning(live_file, started):
    result = runner.invoke(app, ["--db", str(live_file), "datasette", "--host", "0.0.0.0", "--allow-remote"])
    assert result.exit_code == 0
    assert "warning" in result.output and "anyone who can reach" in result.output
    assert started[0]["host"] == "0.0.0.0"


def test_a_snapshot_is_served_immutable(live_file, started, tmp_path):
    out = tmp_path / "snap.db"
    assert runner.invoke(app, ["--db", str(live_file), "export", "sqlite", str(out)]).exit_code == 0
    result = runner.invoke(app, ["--db", str(out), "datasette", "--immutable", "--port", "9001"])
    assert result.exit_code == 0
    assert started[0]["port"] == 9001 and not started[0]["ds"].get_database("bugdesk").is_mutable


def test_the_live_database_is_never_served_immutable(live_file, started):
    """Immutable would ignore the WAL and allow downloading the file, token hashes and all."""
    result = runner.invoke(app, ["--db", str(live_file), "datasette", "--immutable"])
    assert result.exit_code == 2 and "bugdesk export sqlite" in result.output
    assert started == []


def test_postgresql_is_pointed_to_the_export(started):
    result = runner.invoke(app, ["--db", "postgresql://localhost/bugdesk", "datasette"])
    assert result.exit_code == 2 and "bugdesk export sqlite" in result.output
    assert started == []


def test_a_missing_file_or_pending_migrations_are_refused_with_the_fix(tmp_path, started):
    missing = runner.invoke(app, ["--db", str(tmp_path / "nope.db"), "datasette"])
    assert missing.exit_code == 2 and "no database file" in missing.output
    old = tmp_path / "old.db"
    database = dbmod.open_database(str(old))
    database.connect()
    Runner(database, str(dbmod.schema_dir()), table_name=dbmod.MIGRATION_TABLE).up(target="0001_initial")
    database.close()
    pending = runner.invoke(app, ["--db", str(old), "datasette"])
    assert pending.exit_code == 2 and "bugdesk db upgrade" in pending.output
    assert started == []


def test_export_sqlite_prints_the_counts_as_json(live_file, tmp_path):
    out = tmp_path / "snap.db"
    result = runner.invoke(app, ["--db", str(live_file), "export", "sqlite", str(out), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["path"] == str(out) and body["counts"]["bug_reports"] == 0
    again = runner.invoke(app, ["--db", str(live_file), "export", "sqlite", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_runs_a_real_read_only_server_on_loopback(live_file):
    """The whole path: the console command, uvicorn on 127.0.0.1, JSON over HTTP, writes refused."""
    port = _free_port()
    command = [sys.executable, "-m", "bugdesk", "--db", str(live_file), "datasette", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"{base}/bugdesk/sla_breaches.json?_shape=array", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        assert response.status_code == 200 and response.json() == []
        delete = httpx.get(f"{base}/bugdesk.json", params={"sql": "with x as (select 1) delete from bug_reports"})
        assert delete.status_code == 400
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_core_never_imports_datasette():
    """Only the analyst commands load it, on demand: the CLI, the API and the services start without it."""
    code = (
        "import sys, bugdesk.cli, bugdesk.service, bugdesk.queries, bugdesk.analyst.export; "
        "assert 'datasette' not in sys.modules, 'datasette imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_plain_datasette_run_from_this_environment_loads_the_guard():
    """The entry point in pyproject.toml registers the guard with Datasette's plugin manager on its own."""
    code = (
        "import sys; from datasette.plugins import pm; import bugdesk.analyst.guard as guard; "
        "sys.exit(0 if pm.is_registered(guard) else 1)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
