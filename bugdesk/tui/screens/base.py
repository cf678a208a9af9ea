"""Provides the base of the screens that show reports: the action keys, enabled only where they apply."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.screen import Screen

from bugdesk.lifecycle import DONE_STATUSES, allowed_targets


@dataclass(frozen=True)
class Target:
    """The report an action applies to, as the screen shows it (its version guards the write)."""

    number: int
    title: str
    status: str
    version: int
    severity: str
    category: str
    assignee: str | None
    component: str | None
    is_duplicate: bool


ACTIONS: dict[str, str] = {
    "triage": "Set severity, category, assignee, component",
    "move": "Change status (only the allowed targets)",
    "note": "Add a note to the timeline",
    "resolve": "Resolve with notes and commits",
    "reopen": "Reopen a resolved or closed report",
    "merge": "Merge this report's group into another report",
    "split": "Split a duplicate out of its group",
}
"""The report actions and what they do (the command palette and the help screen show these)."""


class ReportScreen(Screen):
    """A screen with a current report and the keys that act on it."""

    BINDINGS = [
        Binding("t", "triage", "Triage"),
        Binding("m", "move", "Move"),
        Binding("n", "note", "Note"),
        Binding("r", "resolve", "Resolve"),
        Binding("o", "reopen", "Reopen"),
        Binding("M", "merge", "Merge", show=False),
        Binding("S", "split", "Split", show=False),
    ]

    def current_target(self, kind: str | None = None) -> Target | None:
        """The report an action of ``kind`` applies to; screens override this."""
        return None

    def reload(self) -> None:
        """Re-read what the screen shows (after a change elsewhere); screens override this."""

    def applicable(self, kind: str) -> bool:
        """Whether action ``kind`` makes sense for the current report."""
        target = self.current_target(kind)
        if target is None:
            return False
        if kind == "reopen":
            return target.status in DONE_STATUSES
        if kind == "resolve":
            return "resolved" in allowed_targets(target.status)
        if kind == "move":
            return bool(allowed_targets(target.status))
        if kind == "split":
            return target.is_duplicate
        return True

    def refresh_actions(self) -> None:
        """Update the footer when the set of applicable actions changed (not on every cursor move).

        Refreshing bindings recomposes the footer, which costs far more than moving the cursor;
        most moves land on a report that allows the same actions as the last one.
        """
        applicable = tuple(self.applicable(kind) for kind in ACTIONS)
        if applicable != getattr(self, "_applicable", None):
            self._applicable = applicable
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ACTIONS:
            # False hides the key from the footer; the footer updates when the selection moves.
            return self.applicable(action)
        return True

    def _start(self, kind: str) -> None:
        target = self.current_target(kind)
        if target is not None and self.applicable(kind):
            self.app.start_action(kind, target)  # type: ignore[attr-defined]

    def action_triage(self) -> None:
        self._start("triage")

    def action_move(self) -> None:
        self._start("move")

    def action_note(self) -> None:
        self._start("note")

    def action_resolve(self) -> None:
        self._start("resolve")

    def action_reopen(self) -> None:
        self._start("reopen")

    def action_merge(self) -> None:
        self._start("merge")

    def action_split(self) -> None:
        self._start("split")
