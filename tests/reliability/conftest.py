"""The reliability tests' terminal summary: how many fuzz cases ran (the figure the issue quotes)."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    fuzz = __import__("sys").modules.get("fuzz")
    tally = getattr(fuzz, "TALLY", None)
    if not tally:
        return
    total = sum(tally.values())
    errors = len(fuzz.SERVER_ERRORS)
    terminalreporter.write_sep("-", f"fuzz cases tried: {total} over {len(tally)} endpoints, 5xx answers: {errors}")
