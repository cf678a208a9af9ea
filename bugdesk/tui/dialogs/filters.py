"""Provides the filter form of the report list: status, severity, category, assignee, breached, duplicates."""

from __future__ import annotations

from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from bugdesk.lifecycle import SEVERITIES
from bugdesk.tui.store import STATUS_CHOICES, ListQuery


class FilterDialog(ModalScreen[ListQuery | None]):
    """Edit the list's filters; dismisses with the new ``ListQuery`` (search and sort kept) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, query: ListQuery) -> None:
        super().__init__()
        self._query = query

    def compose(self) -> ComposeResult:
        q = self._query
        with Vertical(classes="dialog"):
            yield Label("Filter reports", classes="dialog-title")
            with Grid(classes="form"):
                yield Label("status")
                yield Select(
                    [(s, s) for s in STATUS_CHOICES], value=q.status, allow_blank=False, id="status", compact=True
                )
                yield Label("severity")
                yield Select(
                    [(s, s) for s in SEVERITIES],
                    value=q.severity or Select.NULL,
                    prompt="any",
                    id="severity",
                    compact=True,
                )
                yield Label("category")
                yield Input(value=q.category or "", placeholder="any", id="category", compact=True)
                yield Label("assignee")
                yield Input(value=q.assignee or "", placeholder="anyone", id="assignee", compact=True)
            with Vertical(classes="checks"):
                yield Checkbox("SLA breached only", q.breached, id="breached")
                yield Checkbox("include duplicates", q.duplicates, id="duplicates")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", variant="primary", id="apply", compact=True)
                yield Button("Clear", id="clear", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
            yield Static("Enter in a field or Ctrl+S applies, Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#status", Select).focus()

    def _read(self) -> ListQuery:
        severity = self.query_one("#severity", Select).value
        return replace(
            self._query,
            status=str(self.query_one("#status", Select).value),
            severity=None if severity is Select.NULL else str(severity),
            category=self.query_one("#category", Input).value.strip() or None,
            assignee=self.query_one("#assignee", Input).value.strip() or None,
            breached=self.query_one("#breached", Checkbox).value,
            duplicates=self.query_one("#duplicates", Checkbox).value,
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "apply":
            self.action_apply()
        elif event.button.id == "clear":
            self.dismiss(replace(self._query.cleared(), search=None))
        else:
            self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        self.dismiss(self._read())

    def action_cancel(self) -> None:
        self.dismiss(None)
