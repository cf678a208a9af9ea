"""`bugdesk db ...`: migrations and their status."""

from __future__ import annotations

import typer

from bugdesk import db as dbmod
from bugdesk.cli._app import JsonOption, app, console, database, print_json

db_app = typer.Typer(help="Database schema: migrations and their status.", no_args_is_help=True)
app.add_typer(db_app, name="db")


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
