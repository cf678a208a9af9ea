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
    try:
        state.settings = load_settings(database_url=db)
    except BugdeskError as exc:
        fail(str(exc))


@contextmanager
def database(check_schema: bool = True, restore_deferred: bool = True) -> Iterator[Any]:
    """Open the configured database; BugdeskErrors become a message and exit code 2."""
    settings = state.settings
    try:
        with dbmod.connected(
            settings.database_url, settings, check_schema=check_schema, restore_deferred=restore_deferred
        ) as db:
            yield db
    except BugdeskError as exc:
        fail(str(exc))


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Any]:
    """A rich progress bar with rate and ETA on a terminal; silent when output is piped."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TimeRemainingColumn

    if not err_console.is_terminal:
        yield lambda n: None
        return
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def main() -> None:
    app()
