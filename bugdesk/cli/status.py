"""`bugdesk status`: the at-a-glance summary."""

from __future__ import annotations

from rich.table import Table

from bugdesk import queries
from bugdesk.cli._app import JsonOption, app, console, database, print_json
from bugdesk.lifecycle import SEVERITIES, STATUSES


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
