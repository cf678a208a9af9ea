"""Provides the syntax-highlighted stack trace of the detail view."""

from __future__ import annotations

from rich.syntax import Syntax
from rich.text import Text
from textual.widgets import Static


class StackTrace(Static):
    """A Python traceback highlighted by Pygments' ``pytb`` lexer (plain text when it does not parse)."""

    def show(self, stacktrace: str | None) -> None:
        """Render ``stacktrace`` (or a note that there is none)."""
        if not stacktrace:
            self.update(Text("(no stack trace)", style="dim"))
            return
        lexer = "pytb" if "Traceback (most recent call last)" in stacktrace else "text"
        # word_wrap: long frame paths stay readable at 80 columns instead of running off the edge.
        self.update(
            Syntax(stacktrace.rstrip("\n"), lexer, theme="ansi_dark", word_wrap=True, background_color="default")
        )
