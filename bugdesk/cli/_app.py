"""The Typer app, its global options and the helpers every command module shares."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console

from bugdesk import db as dbmod
from bugdesk.config import Settings, load_settings
from bugdesk.errors import BugdeskError

app = typer.Typer(
    help="bugdesk: a local-first bug-report desk for remediation agents, humans and analysts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="BUGDESK_DATABASE_URL",
        help="Database URL or SQLite file path [default: sqlite:///bugdesk.db]",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class State:
    settings: Settings = Settings()


state = State()


@app.callback()
def _root(db: DbOption = None) -> None:
    state.settings = load_settings(database_url=db)


@contextmanager
def database(check_schema: bool = True) -> Iterator[Any]:
    """Open the configured database; BugdeskErrors become a message and exit code 2."""
    try:
        with dbmod.connected(state.settings.database_url, state.settings, check_schema=check_schema) as db:
            yield db
    except BugdeskError as exc:
        fail(str(exc))


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def main() -> None:
    app()
