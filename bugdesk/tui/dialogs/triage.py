"""Provides the triage form: severity, category, assignee and component of one report."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from bugdesk.lifecycle import SEVERITIES


class TriageDialog(ModalScreen[dict[str, Any] | None]):
    """Edit the triage fields; dismisses with the values (the service ignores unchanged ones) or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, number: int, *, severity: str, category: str, assignee: str | None, component: str | None):
        super().__init__()
        self._number = number
        self._initial = {"severity": severity, "category": category, "assignee": assignee, "component": component}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Triage #{self._number}", classes="dialog-title")
            with Grid(classes="form"):
                yield Label("severity")
                yield Select(
                    [(s, s) for s in SEVERITIES],
                    value=self._initial["severity"],
                    allow_blank=False,
                    id="severity",
                    compact=True,
                )
                yield Label("category")
                yield Input(value=self._initial["category"] or "", id="category", compact=True)
                yield Label("assignee")
                yield Input(value=self._initial["assignee"] or "", placeholder="(nobody)", id="assignee", compact=True)
                yield Label("component")
                yield Input(value=self._initial["component"] or "", id="component", compact=True)
            yield Static("Enter or Ctrl+S to save, Esc to cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#severity", Select).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        self.dismiss(
            {
                "severity": self.query_one("#severity", Select).value,
                "category": self.query_one("#category", Input).value.strip() or None,
                "assignee_id": self.query_one("#assignee", Input).value.strip() or None,
                "component": self.query_one("#component", Input).value.strip(),
            }
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
