"""Provides the dashboard's screens, one module each."""

from bugdesk.tui.screens.base import ReportScreen, Target
from bugdesk.tui.screens.detail import DetailScreen
from bugdesk.tui.screens.help import HelpScreen
from bugdesk.tui.screens.main import MainScreen

__all__ = ["DetailScreen", "HelpScreen", "MainScreen", "ReportScreen", "Target"]
