"""Provides the event timeline of the detail view, newest first so a fresh action shows at the top."""

from __future__ import annotations

from datetime import datetime

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from bugdesk.models import BugReportEvent
from bugdesk.tui.format import describe_event, when

KIND_STYLE = {
    "created": "green",
    "triaged": "cyan",
    "assigned": "cyan",
    "status_changed": "blue",
    "claimed": "magenta",
    "released": "magenta",
    "lease_expired": "magenta",
    "note": "yellow",
    "agent_log": "yellow",
    "resolved": "bold green",
    "reopened": "bold red",
    "regressed": "bold red",
    "merged": "bold cyan",
    "split": "bold cyan",
}
"""Colours per event kind; unknown kinds stay plain."""


class Timeline(Static):
    """The latest events of a report."""

    def show(self, events: list[BugReportEvent], now: datetime) -> None:
        """Render ``events`` (already newest first)."""
        if not events:
            self.update(Text("(no events)", style="dim"))
            return
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(no_wrap=True, style="dim")
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, style="dim", max_width=14)
        table.add_column(ratio=1)
        for event in events:
            table.add_row(
                when(event.created_at),
                Text(event.kind, style=KIND_STYLE.get(event.kind, "")),
                event.actor,
                describe_event(event),
            )
        self.update(table)
