"""Provides the dashboard's modal dialogs, one module each."""

from bugdesk.tui.dialogs.confirm import ConfirmDialog
from bugdesk.tui.dialogs.filters import FilterDialog
from bugdesk.tui.dialogs.move import MoveDialog
from bugdesk.tui.dialogs.resolve import ResolveDialog
from bugdesk.tui.dialogs.text_prompt import TextPrompt
from bugdesk.tui.dialogs.triage import TriageDialog

__all__ = ["ConfirmDialog", "FilterDialog", "MoveDialog", "ResolveDialog", "TextPrompt", "TriageDialog"]
