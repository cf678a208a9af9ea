"""Provides the status move dialog: only the targets the lifecycle allows from the current status."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

CLOSE_CHOICES = (("wont_fix", "won't fix"), ("duplicate", "duplicate"), ("done", "done"))
"""Closing asks why; each reason is its own choice so one Enter does it."""


def choices(allowed: tuple[str, ...]) -> list[tuple[str, str | None, str]]:
    """(status, close reason, label) for every allowed target, closing once per reason."""
    out: list[tuple[str, str | None, str]] = []
    for status in allowed:
        if status == "closed":
            out.extend(("closed", reason, f"closed ({label})") for reason, label in CLOSE_CHOICES)
        else:
            out.append((status, None, status))
    return out


class MoveDialog(ModalScreen[dict[str, Any] | None]):
    """Pick a target status (and optionally a note); dismisses with ``{status, close_reason, note}`` or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, number: int, status: str, allowed: tuple[str, ...]) -> None:
        super().__init__()
        self._number = number
        self._status = status
        self._choices = choices(allowed)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"Move #{self._number} from {self._status} to…", classes="dialog-title")
            yield OptionList(*(Option(label, id=str(i)) for i, (_, _, label) in enumerate(self._choices)), id="targets")
            yield Input(placeholder="note (optional)", id="note", compact=True)
            yield Static("↑↓ choose, Enter to move, Tab for the note, Esc to cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        targets = self.query_one(OptionList)
        targets.highlighted = 0
        targets.focus()

    def _finish(self) -> None:
        index = self.query_one(OptionList).highlighted
        if index is None:
            return
        status, reason, _ = self._choices[index]
        note = self.query_one("#note", Input).value.strip() or None
        self.dismiss({"status": status, "close_reason": reason, "note": note})

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._finish()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._finish()

    def action_cancel(self) -> None:
        self.dismiss(None)
