"""Textual stays out of the core and out of the CLI's start-up: only `bugdesk tui` and `bugdesk demo` load it."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["bugdesk.cli", "bugdesk.tui.store", "bugdesk.tui.format", "bugdesk.demo"])
def test_importing_does_not_load_textual(module):
    code = f"import sys, {module}; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
