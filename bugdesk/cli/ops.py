"""`bugdesk backup`, `restore` and `doctor`: keeping the data safe and checking it is sound."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bugdesk import ops
from bugdesk.cli._app import JsonOption, app, console, database, fail, print_json, state
from bugdesk.errors import BugdeskError


@app.command()
def backup(out: Annotated[Path, typer.Argument(help="New file to write the backup to.")]) -> None:
    """Write a consistent backup while bugdesk keeps running (SQLite backup API, or pg_dump on PostgreSQL).

    Example: bugdesk backup backups/bugdesk-2025-03-01.db
    """
    try:
        result = ops.backup(state.settings.database_url, out)
    except (BugdeskError, OSError) as exc:
        fail(str(exc))
    console.print(f"backup written to {result['path']} ({result['bytes']:,} bytes)", highlight=False)


@app.command()
def restore(
    backup_file: Annotated[Path, typer.Argument(help="A file written by `bugdesk backup`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing database.")] = False,
) -> None:
    """Restore a backup into the configured database (a new file unless --force).

    Example: bugdesk --db restored.db restore backups/bugdesk-2025-03-01.db
    """
    try:
        result = ops.restore(backup_file, state.settings.database_url, force=force)
    except (BugdeskError, OSError) as exc:
        fail(str(exc))
    console.print(f"restored into {result['target']}", highlight=False)


@app.command()
def doctor(as_json: JsonOption = False) -> None:
    """Check integrity, foreign keys, migrations, dedup counts, stale leases; exits 1 when something is wrong.

    Example: bugdesk doctor || mail -s "bugdesk needs a look" ops@example.com
    """
    with database(check_schema=False) as db:
        findings = ops.doctor(db)
    if as_json:
        print_json([f.__dict__ for f in findings])
    else:
        for f in findings:
            mark = "[green]ok[/]  " if f.ok else "[bold red]FAIL[/]"
            console.print(f"{mark} {f.check}: {f.detail}", highlight=False)
            for example in f.examples:
                console.print(f"       {example}", highlight=False)
    if not all(f.ok for f in findings):
        raise typer.Exit(1)
