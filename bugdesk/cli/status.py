"""`bugdesk status`: the at-a-glance summary."""

from __future__ import annotations

import sys

from rich.table import Table
from rich.text import Text

from bugdesk import queries
from bugdesk.cli._app import JsonOption, app, console, database, print_json
from bugdesk.lifecycle import OPEN_STATUSES, SEVERITIES, STATUSES


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Counts by status and severity, SLA breaches, oldest open report and active claims.

    Counts are of canonical reports (duplicates are counted once, in their group). A rich table
    on a terminal, tab-separated lines when piped.

    Example: bugdesk status --json
    """
    with database():
        summary = queries.status_summary()
    if as_json:
        print_json(summary)
        return
    counts = summary["counts"]
    breaches = summary["sla_breaches_by_severity"]
    oldest = summary["oldest_open"]
    facts = [
        ("open", summary["open"]),
        ("duplicates", summary["duplicates"]),
        ("sla_breaches", summary["sla_breaches"]),
        ("active_claims", summary["active_claims"]),
        ("needs_human", summary["needs_human"]),
    ]
    if not console.is_terminal:
        # Piped: one fact per tab-separated line, easy to grep and cut.
        lines = ["\t".join(("status", *SEVERITIES, "total"))]
        for st in STATUSES:
            row = counts[st]
            lines.append("\t".join((st, *(str(row[s]) for s in SEVERITIES), str(sum(row.values())))))
        lines.append("\t".join(("sla_breached", *(str(breaches[s]) for s in SEVERITIES), str(summary["sla_breaches"]))))
        lines += [f"{name}\t{value}" for name, value in facts]
        if oldest:
            lines.append(f"oldest_open\t#{oldest['number']}\t{oldest['age_seconds']}\t{oldest['title']}")
        sys.stdout.write("\n".join(lines) + "\n")
        return
    table = Table(title="bug reports (canonical) by status and severity", title_style="bold")
    table.add_column("status")
    for sev in SEVERITIES:
        table.add_column(sev, justify="right")
    table.add_column("total", justify="right", style="bold")
    for st in STATUSES:
        row = counts[st]
        table.add_row(
            st, *(str(row[s]) for s in SEVERITIES), str(sum(row.values())), end_section=st == OPEN_STATUSES[-1]
        )
    open_row = summary["open_by_severity"]
    table.add_section()
    table.add_row(
        Text("open", style="bold"), *(str(open_row[s]) for s in SEVERITIES), str(summary["open"]), style="bold"
    )
    table.add_row(
        Text("SLA breached", style="bold red"),
        *(Text(str(breaches[s]), style="bold red" if breaches[s] else "dim") for s in SEVERITIES),
        str(summary["sla_breaches"]),
    )
    console.print(table)
    console.print(
        "   ".join(f"{name.replace('_', ' ')}: {value}" for name, value in facts[1:]),
        highlight=False,
        soft_wrap=True,
    )
    if oldest:
        days = oldest["age_seconds"] / 86400
        console.print(f"oldest open: #{oldest['number']} ({days:.1f} days) {oldest['title']}", highlight=False)
