"""Provides a one-line text prompt (notes, a reopen reason, the report to merge into)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text; Enter submits, Escape dismisses with None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, prompt: str, *, placeholder: str = "", value: str = "", required: bool = False):
        super().__init__()
        self._title = title
        self._prompt = prompt
        self._placeholder = placeholder
        self._value = value
        self._required = required

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._prompt, classes="dialog-body", markup=False)
            yield Input(value=self._value, placeholder=self._placeholder, id="text", compact=True)
            yield Static("Enter to save, Esc to cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if self._required and not text:
            self.notify("This needs some text (Esc to cancel).", severity="warning")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
