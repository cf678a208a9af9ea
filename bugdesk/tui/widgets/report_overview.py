"""Provides the top of the detail view: title, lifecycle fields, claim, SLA, telemetry and description."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from bugdesk.lifecycle import is_open
from bugdesk.tui.format import SEVERITY_SHORT, SEVERITY_STYLE, age, sla_left, when
from bugdesk.tui.store import ReportDetail


def _grid(pairs: list[tuple[str, RenderableType]], across: int = 2) -> Table:
    """Label/value pairs, ``across`` pairs a row (one pair a row would scroll away at 24 lines)."""
    grid = Table.grid(padding=(0, 1), expand=True)
    for _ in range(across):
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(ratio=1)
    for i in range(0, len(pairs), across):
        row: list[RenderableType] = []
        for label, value in pairs[i : i + across]:
            row += [label, value]
        grid.add_row(*row)
    return grid


def _value(value: object) -> Text:
    return Text("-", style="dim") if value in (None, "", []) else Text(str(value))


class ReportOverview(Static):
    """What a report is and where it stands."""

    WIDE = 110
    """From this width on, telemetry goes two pairs a row; below it, trace ids would be cut."""

    _shown: tuple[ReportDetail, datetime] | None = None

    def on_resize(self) -> None:
        if self._shown is not None:
            self.show(*self._shown)

    def show(self, detail: ReportDetail, now: datetime) -> None:
        """Render ``detail`` as of ``now``."""
        self._shown = (detail, now)
        r = detail.report
        head = Text()
        head.append(f"#{r.number} ", style="bold")
        head.append(SEVERITY_SHORT.get(r.severity, r.severity), style=SEVERITY_STYLE.get(r.severity, ""))
        head.append(f"  {r.status}", style="bold")
        if r.close_reason:
            head.append(f" ({r.close_reason})", style="dim")
        if r.needs_human:
            head.append("  ⚑ needs a human", style="bold yellow")
        head.append("\n")
        head.append(r.title, style="bold")

        sla, breached = sla_left(r.sla_due_at, now, is_open=is_open(r.status))
        sla_text = Text(f"{when(r.sla_due_at)}  ")
        sla_text.append(
            ("breached " + sla.lstrip("-")) if breached else f"{sla} left", style="bold red" if breached else ""
        )
        if not is_open(r.status):
            sla_text = Text(when(r.sla_due_at), style="dim")
        if r.claimed_by:
            state = "live" if detail.claim_live else "expired"
            claim = Text(
                f"{r.claimed_by} until {when(r.claim_expires_at)} ({state})",
                style="magenta" if detail.claim_live else "dim",
            )
        else:
            claim = _value(None)
        lifecycle = _grid(
            [
                ("category", _value(r.category)),
                ("component", _value(r.component)),
                ("assignee", _value(r.assignee_id)),
                ("claimed by", claim),
                ("created", Text(f"{when(r.created_at)} ({age(r.created_at, now)} ago)")),
                ("SLA due", sla_text),
                ("updated", _value(when(r.updated_at))),
                ("resolved", _value(r.resolved_at and when(r.resolved_at))),
                ("source", _value(r.source)),
                ("reporter", _value(r.reporter_id)),
                ("version", _value(r.version)),
                ("close reason", _value(r.close_reason)),
            ]
        )
        telemetry = _grid(
            [
                ("trace id", _value(r.trace_id)),
                ("request id", _value(r.request_id)),
                ("release", _value(r.release_sha)),
                ("environment", _value(r.environment)),
                ("route", _value(r.route)),
                ("exception", _value(r.exception_type)),
                ("fixed in", _value(r.fixed_in_release)),
                ("commits", _value(", ".join(r.resolution_commits or []))),
            ],
            across=2 if self.size.width >= self.WIDE or not self.size.width else 1,
        )
        parts: list[RenderableType] = [
            head,
            Text(""),
            lifecycle,
            Text("\ntelemetry", style="bold underline"),
            telemetry,
        ]
        if r.resolution_notes:
            parts += [Text("\nresolution", style="bold underline"), Text(r.resolution_notes)]
        parts += [
            Text("\ndescription", style="bold underline"),
            Text(r.description) if r.description else Text("(none)", style="dim"),
        ]
        self.update(Group(*parts))
