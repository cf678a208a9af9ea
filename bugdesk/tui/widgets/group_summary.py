"""Provides the dedup group section of the detail view: canonical, occurrences and why reports were grouped."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from bugdesk.tui.format import when
from bugdesk.tui.store import ReportDetail


class GroupSummary(Static):
    """Where the report stands in its group, and the signature its fingerprint was computed from."""

    def show(self, detail: ReportDetail) -> None:
        """Render the group facts of ``detail``."""
        line = Text()
        if detail.canonical is not None:
            line.append("duplicate of ", style="dim")
            line.append(f"#{detail.canonical.number}", style="bold")
            line.append(f" {detail.canonical.title} ({detail.canonical.status})")
        else:
            line.append("canonical report", style="bold")
        line.append(f"\n{detail.occurrences:,} occurrences", style="bold")
        line.append(f" over {detail.fingerprints} fingerprint(s); {detail.duplicate_count:,} duplicate report(s)")
        line.append(f"\nfirst seen {when(detail.first_seen_at)}, last seen {when(detail.last_seen_at)}", style="dim")
        parts = [line]
        if detail.signature:
            parts.append(Text(f"signature ({detail.algorithm}):", style="dim"))
            parts.append(Text(detail.signature, style="italic"))
        if detail.duplicate_count > len(detail.duplicates):
            parts.append(Text(f"showing the newest {len(detail.duplicates)} duplicates", style="dim"))
        self.update(Group(*parts))
