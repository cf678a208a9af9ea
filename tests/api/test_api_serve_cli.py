"""`bugdesk serve` refusing to expose a token-less server, and `bugdesk token create|list|revoke`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bugdesk.cli import app
from bugdesk.cli.serve import is_loopback

runner = CliRunner()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("192.168.1.5", False)],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_refuses_a_public_host_when_no_token_exists(tmp_path):
    result = runner.invoke(app, ["--db", str(tmp_path / "x.db"), "serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "no API token exists" in result.output and "bugdesk token create" in result.output


def test_tokens_are_created_listed_and_revoked(tmp_path):
    db = ["--db", str(tmp_path / "x.db")]
    created = runner.invoke(app, [*db, "token", "create", "fixer", "--scopes", "read,write"])
    assert created.exit_code == 0
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("bd_")
    listed = json.loads(runner.invoke(app, [*db, "token", "list", "--json"]).output)
    assert listed[0]["name"] == "fixer" and listed[0]["scopes"] == ["read", "write"]
    assert secret not in runner.invoke(app, [*db, "token", "list"]).output
    assert runner.invoke(app, [*db, "token", "revoke", "fixer"]).exit_code == 0
    assert json.loads(runner.invoke(app, [*db, "token", "list", "--json"]).output)[0]["revoked_at"]
    assert runner.invoke(app, [*db, "token", "revoke", "nobody"]).exit_code == 2


def test_a_bad_scope_is_refused_with_the_allowed_ones(tmp_path):
    result = runner.invoke(app, ["--db", str(tmp_path / "x.db"), "token", "create", "x", "--scopes", "root"])
    assert result.exit_code == 2 and "admin" in result.output


def test_every_command_docstring_ends_with_an_example():
    from bugdesk.cli import serve

    for fn in (serve.serve, serve.token_create, serve.token_list, serve.token_revoke):
        assert fn.__doc__.strip().splitlines()[-1].strip().startswith("Example: bugdesk ")


def test_a_served_worker_freezes_its_start_up_heap_so_full_collections_stay_short(tmp_path):
    """The factory uvicorn calls in each worker process; in a process of its own, since freezing is for good."""
    import subprocess
    import sys

    code = "import gc; from bugdesk.api.app import app_from_env; app_from_env(); print(gc.get_freeze_count())"
    env = {"BUGDESK_DATABASE_URL": str(tmp_path / "f.db"), "BUGDESK_CONFIG": str(tmp_path / "none.toml")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 50_000  # modules, the app and its routes: the bulk of a worker's objects
