"""`bugdesk serve` (the agent API on uvicorn) and `bugdesk token ...` (API tokens)."""

from __future__ import annotations

import copy
import ipaddress
import os
from typing import Annotated

import typer
from rich.table import Table

from bugdesk.cli._app import JsonOption, app, console, database, fail, print_json, state
from bugdesk.service import tokens

token_app = typer.Typer(help="API tokens: create (the secret is shown once), list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def log_config(level: str) -> dict:
    """uvicorn's logging, plus bugdesk's loggers (the JSON access log) on stderr; applied in every worker process."""
    from uvicorn.config import LOGGING_CONFIG  # here: the other commands should not pay for importing uvicorn

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["bugdesk"] = {"format": "%(message)s"}
    config["handlers"]["bugdesk"] = {
        "class": "logging.StreamHandler",
        "formatter": "bugdesk",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["bugdesk"] = {"handlers": ["bugdesk"], "level": level.upper(), "propagate": False}
    return config


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; anything but loopback needs a token to exist.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (PostgreSQL, or SQLite on one host).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn and access-log level.")] = "info",
) -> None:
    """Serve the agent API (and its OpenAPI docs at /api/docs) on uvicorn.

    Example: bugdesk serve --port 8765 --workers 2
    """
    import uvicorn

    with database():
        live = [t for t in tokens.list_tokens() if t.revoked_at is None]
    if not live and not is_loopback(host):
        fail(
            f"refusing to listen on {host}: no API token exists. Every API call needs one, so a server other "
            "machines can reach would be unusable, a sign that setup is unfinished. Create a token first with "
            "`bugdesk token create NAME --scopes read,write`, or bind 127.0.0.1."
        )
    if not live:
        console.print("no API token exists yet: create one with `bugdesk token create agent --scopes read,write`")
    # Worker processes build the app from the environment, so the chosen database must travel there.
    os.environ["BUGDESK_DATABASE_URL"] = state.settings.database_url
    console.print(f"bugdesk API on http://{host}:{port}/api (docs: /api/docs), database {state.settings.database_url}")
    config = {
        "app": "bugdesk.api.app:app_from_env",
        "factory": True,
        "log_level": log_level,
        "log_config": log_config(log_level),
        "access_log": False,  # bugdesk.access logs every request as JSON instead
        "loop": "uvloop",
        "http": "httptools",
    }
    if workers == 1:
        uvicorn.run(host=host, port=port, **config)
        return
    from bugdesk.api.workers import run_workers

    try:
        run_workers(workers, host, port, config)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="The token's name; it is recorded as the actor of what it does.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: read, write, ingest, admin.")] = "read,write",
) -> None:
    """Create an API token and print its secret (shown this once; only its SHA-256 is stored).

    Example: bugdesk token create fixer-bot --scopes read,write
    """
    with database():
        token, secret = tokens.create_token(name, scopes)
    console.print(f"token {token.name!r} with scopes {token.scopes}; the secret (store it now, it is not shown again):")
    typer.echo(secret)


@token_app.command("list")
def token_list(as_json: JsonOption = False) -> None:
    """List tokens: name, scopes, created, last used, revoked.

    Example: bugdesk token list --json
    """
    with database():
        rows = tokens.list_tokens()
    data = [
        {
            "name": t.name,
            "scopes": t.scopes.split(","),
            "created_at": t.created_at.isoformat(),
            "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        }
        for t in rows
    ]
    if as_json:
        print_json(data)
        return
    table = Table(title="API tokens")
    for column in ("name", "scopes", "created", "last used", "revoked"):
        table.add_column(column)
    for t in data:
        table.add_row(
            t["name"], ",".join(t["scopes"]), t["created_at"][:19], (t["last_used_at"] or "-")[:19],
            (t["revoked_at"] or "-")[:19],
        )  # fmt: skip
    console.print(table)


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token at once; requests with it get 401 from then on.

    Example: bugdesk token revoke fixer-bot
    """
    with database():
        token = tokens.revoke_token(name)
    console.print(f"revoked {token.name!r}")
