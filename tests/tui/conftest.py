"""Fixtures for the dashboard tests: the fixed data set and a dashboard factory with a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from tuikit import NOW, build_fixed_db

from bugdesk.config import Settings
from bugdesk.tui.app import BugdeskApp, make_app


@pytest.fixture
def fixed_settings(tmp_path: Path) -> Settings:
    """Settings for a fresh copy of the fixed data set."""
    return build_fixed_db(tmp_path / "fixed.db")


@pytest.fixture
def dashboard(fixed_settings: Settings) -> Callable[..., BugdeskApp]:
    """Build the dashboard on the fixed data with the fixed clock, as user ``tester``, no polling."""

    def build(**kwargs) -> BugdeskApp:
        kwargs.setdefault("poll_seconds", 0)
        return make_app(fixed_settings, now=lambda: NOW, actor="tester", **kwargs)

    return build
