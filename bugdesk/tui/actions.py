"""Provides the action flows: ask with a dialog, apply through the service layer, show the outcome.

Each flow runs in a worker (dialogs are awaited with ``push_screen_wait``) and ends in
``BugdeskApp.perform``, which runs the service call on the database thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bugdesk.errors import BugdeskError
from bugdesk.lifecycle import allowed_targets
from bugdesk.tui.dialogs import ConfirmDialog, MoveDialog, ResolveDialog, TextPrompt, TriageDialog
from bugdesk.tui.screens.base import Target
from bugdesk.tui.store import Action

if TYPE_CHECKING:
    from bugdesk.tui.app import BugdeskApp


async def triage(app: BugdeskApp, t: Target) -> None:
    values = await app.push_screen_wait(
        TriageDialog(t.number, severity=t.severity, category=t.category, assignee=t.assignee, component=t.component)
    )
    if values is not None:
        await app.perform(Action("triage", t.number, app.actor, t.version, fields=values))


async def move(app: BugdeskApp, t: Target) -> None:
    values = await app.push_screen_wait(MoveDialog(t.number, t.status, allowed_targets(t.status)))
    if values is not None:
        await app.perform(Action("move", t.number, app.actor, t.version, fields=values))


async def note(app: BugdeskApp, t: Target) -> None:
    body = await app.push_screen_wait(
        TextPrompt(f"Note on #{t.number}", t.title, placeholder="what you found or decided", required=True)
    )
    if body:
        await app.perform(Action("note", t.number, app.actor, fields={"body": body}))


async def resolve(app: BugdeskApp, t: Target) -> None:
    values = await app.push_screen_wait(ResolveDialog(t.number))
    if values is not None:
        await app.perform(Action("resolve", t.number, app.actor, t.version, fields=values))


async def reopen(app: BugdeskApp, t: Target) -> None:
    reason = await app.push_screen_wait(
        TextPrompt(f"Reopen #{t.number}", f"{t.title}\nIt goes back to triaged.", placeholder="why (optional)")
    )
    if reason is not None:
        await app.perform(Action("reopen", t.number, app.actor, t.version, fields={"reason": reason or None}))


async def merge(app: BugdeskApp, t: Target) -> None:
    text = await app.push_screen_wait(
        TextPrompt(
            f"Merge #{t.number}",
            f"{t.title}\nMerge this report's group into report:",
            placeholder="number",
            required=True,
        )
    )
    if not text:
        return
    try:
        other = await app.store.call(app.store.lookup, text)
    except BugdeskError as exc:
        app.notify(str(exc), title=exc.title, severity="error")
        return
    confirmed = await app.push_screen_wait(
        ConfirmDialog(
            "Merge reports?",
            f"Merge #{t.number} {t.title}\ninto #{other.number} {other.title} ({other.occurrences:,} occurrences)?\n\n"
            f"#{t.number} becomes a duplicate of #{other.number}, and its duplicates and fingerprints move there.",
            confirm_label="Merge",
        )
    )
    if confirmed:
        await app.perform(Action("merge", t.number, app.actor, fields={"into": other.number}))


async def split(app: BugdeskApp, t: Target) -> None:
    confirmed = await app.push_screen_wait(
        ConfirmDialog(
            "Split report?",
            f"Split #{t.number} {t.title} out of its group?\n\n"
            "It becomes its own canonical report; later reports with its fingerprint still join the old group.",
            confirm_label="Split",
        )
    )
    if confirmed:
        await app.perform(Action("split", t.number, app.actor))


FLOWS: dict[str, Callable[[BugdeskApp, Target], Awaitable[None]]] = {
    "triage": triage,
    "move": move,
    "note": note,
    "resolve": resolve,
    "reopen": reopen,
    "merge": merge,
    "split": split,
}
"""Action name to flow; the names match ``screens.base.ACTIONS``."""
