"""`bugdesk datasette` and `bugdesk export sqlite`: the analysts' read-only view and its snapshots.

Datasette is imported only when one of these commands runs (through
``bugdesk.analyst.serve``), so the rest of the CLI starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bugdesk.cli._app import app, console, err_console, fail, print_json, state
from bugdesk.errors import BugdeskError

export_app = typer.Typer(help="Snapshots of the database for analysts.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@app.command()
def datasette(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8001,
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless --allow-remote.")] = "127.0.0.1",
    immutable: Annotated[
        bool,
        typer.Option(
            "--immutable",
            help="Serve a snapshot from `bugdesk export sqlite` as immutable (never the live database).",
        ),
    ] = False,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Bind a non-loopback address anyway: anyone who reaches it reads every report."
        ),
    ] = False,
) -> None:
    """Serve the SQLite database read-only in Datasette, with titles, descriptions and canned queries.

    Example: bugdesk datasette --port 8001
    """
    from bugdesk.analyst import serve

    if not serve.is_loopback(host):
        if not allow_remote:
            fail(
                f"{host} is not a loopback address: Datasette would serve every report to the network. "
                "Use --host 127.0.0.1, or add --allow-remote if that is really intended"
            )
        err_console.print(
            f"[bold yellow]warning:[/] serving on {host}: anyone who can reach port {port} can read every report",
            highlight=False,
        )
    try:
        path = serve.sqlite_path(state.settings.database_url)
        serve.check_schema(path)
        if immutable:
            serve.check_snapshot(path)
        ds = serve.build_datasette(path, immutable=immutable)
    except BugdeskError as exc:
        fail(str(exc))
    mode = "immutable snapshot" if immutable else "read-only"
    console.print(f"serving {path} ({mode}) at http://{host}:{port}/bugdesk", highlight=False)
    serve.serve(ds, host=host, port=port)


@export_app.command("sqlite")
def export_sqlite(
    out: Annotated[Path, typer.Argument(help="The SQLite file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Write a consistent snapshot without secrets (reports, events, dedup, releases, agent runs) to OUT.

    Works from PostgreSQL or SQLite; serve the result with `bugdesk --db OUT datasette --immutable`.

    Example: bugdesk --db postgresql://localhost/bugdesk export sqlite snapshot.db
    """
    from bugdesk.analyst.export import export_sqlite as run_export

    def report(table: str, rows: int) -> None:
        if not as_json:
            err_console.print(f"{table}: {rows:,} rows", highlight=False)

    try:
        result = run_export(state.settings.database_url, out, force=force, progress=report)
    except BugdeskError as exc:
        fail(str(exc))
    if as_json:
        print_json({"path": str(result.path), "counts": result.counts, "seconds": round(result.seconds, 2)})
    else:
        console.print(f"wrote {result.path} in {result.seconds:.1f} s", highlight=False)
