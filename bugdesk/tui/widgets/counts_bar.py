"""Provides the header line with live counts: open reports by severity, SLA breaches, active claims."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import events
from textual.widgets import Static

from bugdesk.lifecycle import SEVERITIES
from bugdesk.tui.format import SEVERITY_SHORT, SEVERITY_STYLE


class CountsBar(Static):
    """One line: ``bugdesk  open 1,234  CRIT 3 HIGH 40 MED 900 LOW 291  breached 12  claims 4  ⚑ 1  12:04:05``."""

    WIDE = 100
    """From this width on, the bar also names the app and spells out "need a human"."""

    def __init__(self, *, now: Callable[[], datetime], id: str | None = None) -> None:
        super().__init__(Text(" bugdesk  loading…"), id=id)
        self._now = now
        self._summary: dict[str, Any] | None = None

    def on_mount(self) -> None:
        # Every screen has its own bar; they all follow the app's latest summary.
        self.watch(self.app, "summary", self.show_summary)

    def on_resize(self, event: events.Resize) -> None:
        self.show_summary(self._summary)

    def show_summary(self, summary: dict[str, Any] | None) -> None:
        """Render ``summary`` (``queries.status_summary``); ``None`` while the first one loads."""
        if summary is None:
            return
        self._summary = summary
        # Before the first layout the bar has no size yet; it spans the screen, so the screen's width stands in.
        wide = (self.size.width or self.app.size.width) >= self.WIDE
        text = Text(" bugdesk " if wide else " ", style="bold", no_wrap=True, overflow="ellipsis")
        text.append(f" open {summary['open']:,} ", style="bold")
        for severity in SEVERITIES:
            count = summary["open_by_severity"].get(severity, 0)
            text.append(" ")
            text.append(SEVERITY_SHORT[severity], style=SEVERITY_STYLE[severity] if count else "dim")
            text.append(f" {count:,}")
        breaches = summary["sla_breaches"]
        text.append("  ")
        text.append(f" breached {breaches:,} ", style="bold white on dark_red" if breaches else "dim")
        text.append(f"  claims {summary['active_claims']:,}")
        if summary.get("needs_human"):
            label = " need a human" if wide else ""
            text.append(f"  ⚑ {summary['needs_human']:,}{label}", style="bold yellow")
        text.append(f"  {self._now():%H:%M:%S}", style="dim")
        self.update(text, layout=False)  # always one line: repaint it, do not relayout the screen
