"""Provides the resolve form: resolution notes, commit SHAs and the release that carries the fix."""

from __future__ import annotations

import re
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class ResolveDialog(ModalScreen[dict[str, Any] | None]):
    """Dismisses with ``{notes, commits, fixed_in_release}`` or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, number: int) -> None:
        super().__init__()
        self._number = number

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Resolve #{self._number}", classes="dialog-title")
            with Grid(classes="form"):
                yield Label("notes")
                yield Input(placeholder="what was wrong, what fixed it", id="notes", compact=True)
                yield Label("commits")
                yield Input(placeholder="SHAs, separated by spaces or commas", id="commits", compact=True)
                yield Label("fixed in")
                yield Input(placeholder="release SHA or version (optional)", id="fixed", compact=True)
            yield Static("Enter or Ctrl+S to resolve, Esc to cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#notes", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        commits = [c for c in re.split(r"[\s,]+", self.query_one("#commits", Input).value) if c]
        self.dismiss(
            {
                "notes": self.query_one("#notes", Input).value.strip() or None,
                "commits": commits,
                "fixed_in_release": self.query_one("#fixed", Input).value.strip() or None,
            }
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
