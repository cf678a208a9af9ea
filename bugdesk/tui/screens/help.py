"""Provides the help screen: every key, by where it works."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "everywhere",
        (
            ("?", "this help"),
            ("ctrl+p", "command palette: every action by name"),
            ("ctrl+r", "refresh now (changes elsewhere also show up by themselves)"),
            ("ctrl+q", "quit"),
        ),
    ),
    (
        "report list",
        (
            ("↑ ↓ pgup pgdn", "move; more rows load as you near the end"),
            ("home / end", "first row / last loaded row (g / G too)"),
            ("enter", "open the highlighted report"),
            ("/", "search titles and descriptions (enter applies, esc cancels)"),
            ("f", "filter: status, severity, category, assignee, breached, duplicates"),
            ("b / d / c", "toggle breached only / toggle duplicates / clear filters"),
            ("s", "next sort (SLA due, newest, oldest, recently updated, number); or click a header"),
            ("q", "quit"),
        ),
    ),
    (
        "report detail",
        (
            ("↑ ↓ pgup pgdn", "scroll"),
            ("tab", "move to the duplicates list; enter opens one"),
            ("esc / q", "back to the list"),
        ),
    ),
    (
        "actions (list and detail)",
        (
            ("t", "triage: severity, category, assignee, component"),
            ("m", "move status (only the allowed targets are offered)"),
            ("n", "add a note"),
            ("r", "resolve with notes, commits, release"),
            ("o", "reopen a resolved or closed report"),
            ("M", "merge this report's group into another report (asks first)"),
            ("S", "split a duplicate out of its group (asks first)"),
        ),
    ),
)
"""What the help screen lists."""


class HelpScreen(ModalScreen[None]):
    """The keys of the dashboard."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        parts: list[RenderableType] = []
        for area, keys in KEYS:
            table = Table.grid(padding=(0, 2))
            table.add_column(style="bold cyan", no_wrap=True, width=14)
            table.add_column()
            for key, what in keys:
                table.add_row(key, what)
            parts += [Text(area, style="bold underline"), table, Text("")]
        with VerticalScroll(classes="dialog help"):
            yield Label("bugdesk dashboard: keys", classes="dialog-title")
            yield Static(Group(*parts))
            yield Static(
                "Every change goes through bugdesk's service layer and writes an event. A report claimed by an "
                "agent asks before a move or resolve overrides the claim.",
                classes="dialog-hint",
            )

    def action_close(self) -> None:
        self.dismiss(None)
