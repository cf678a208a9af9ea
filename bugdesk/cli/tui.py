"""`bugdesk tui`: the triage dashboard (Textual is imported only when it starts)."""

from __future__ import annotations

from typing import Annotated

import typer

from bugdesk.cli._app import app, database, state


@app.command()
def tui(
    status: Annotated[
        str, typer.Option("--status", help="Initial status filter: open, all, done or a status.")
    ] = "open",
    severity: Annotated[str | None, typer.Option("--severity", help="Initial severity filter.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Initial search.")] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            envvar="BUGDESK_ACTOR",
            help="Who your changes are recorded as [default: login name]",
            show_default=False,
        ),
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", help="Seconds between checks for changes made elsewhere (0: off).")
    ] = 1.0,
) -> None:
    """Open the triage dashboard: live counts, the report list, details, and actions with keys (? for help).

    Example: bugdesk --db bugdesk-demo.db tui --severity critical
    """
    from bugdesk.tui.store import STATUS_CHOICES, ListQuery

    if status not in STATUS_CHOICES:
        raise typer.BadParameter(f"use one of: {', '.join(STATUS_CHOICES)}", param_hint="--status")
    with database():
        pass  # fail here, with a plain message, on a bad URL or an out-of-date schema
    from bugdesk.tui.app import make_app

    query = ListQuery(status=status, severity=severity, search=search)
    make_app(state.settings, actor=actor, poll_seconds=poll, query=query).run()
