"""The ``bugdesk`` command line: thin commands over the service layer and the shared queries."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bugdesk import db as dbmod
from bugdesk import queries
from bugdesk.config import Settings, load_settings
from bugdesk.errors import BugdeskError
from bugdesk.lifecycle import SEVERITIES, STATUSES

app = typer.Typer(
    help="bugdesk: a local-first bug-report desk for remediation agents, humans and analysts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: migrations and their status.", no_args_is_help=True)
app.add_typer(db_app, name="db")

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


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Counts by status and severity, SLA breaches, oldest open report and active claims.

    Example: bugdesk status --json
    """
    with database():
        summary = queries.status_summary()
    if as_json:
        print_json(summary)
        return
    table = Table(title="bug reports (canonical) by status and severity")
    table.add_column("status")
    for sev in SEVERITIES:
        table.add_column(sev, justify="right")
    table.add_column("total", justify="right")
    for st in STATUSES:
        row = summary["counts"][st]
        table.add_row(st, *(str(row[s]) for s in SEVERITIES), str(sum(row.values())))
    console.print(table)
    oldest = summary["oldest_open"]
    console.print(
        f"open: {summary['open']}   duplicates: {summary['duplicates']}   "
        f"SLA breaches: {summary['sla_breaches']}   active claims: {summary['active_claims']}   "
        f"needs a human: {summary['needs_human']}"
    )
    if oldest:
        days = oldest["age_seconds"] / 86400
        console.print(f"oldest open: #{oldest['number']} ({days:.1f} days) {oldest['title']}", highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations from schema/ (safe to run twice).

    Example: bugdesk --db postgresql://localhost/bugdesk db upgrade
    """
    with database(check_schema=False) as db:
        applied = dbmod.upgrade(db)
    console.print("up to date" if not applied else "applied: " + ", ".join(applied))


@db_app.command("status")
def db_status(as_json: JsonOption = False) -> None:
    """List migrations and whether each is applied; exits 1 when some are pending.

    Example: bugdesk db status
    """
    with database(check_schema=False) as db:
        rows = dbmod.migration_status(db)
    pending = [name for name, applied in rows if not applied]
    if as_json:
        print_json({"migrations": [{"name": n, "applied": a} for n, a in rows], "pending": pending})
    else:
        for name, applied in rows:
            console.print(f"{'applied' if applied else 'PENDING'}  {name}")
        if pending:
            console.print(f"{len(pending)} pending: run `bugdesk db upgrade`")
    if pending:
        raise typer.Exit(1)


def main() -> None:
    app()
