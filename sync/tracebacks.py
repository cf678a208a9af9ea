"""Small, dependency-free helpers for Python traceback text found in legacy reports.

Only what the mapping needs: cut a traceback out of free text
(:func:`find_traceback`) and read the final exception's type and message
(:func:`exception_of`). Full frame parsing and normalisation for grouping live in
``bugdesk.fingerprint``; this module deliberately does not depend on it.
"""

from __future__ import annotations

import re

__all__ = ["TRACEBACK_HEADER", "exception_of", "find_traceback"]

TRACEBACK_HEADER = "Traceback (most recent call last):"
_HEADER_LINE = re.compile(r"^[ \t]*Traceback \(most recent call last\):[ \t]*$", re.MULTILINE)
# A closing Markdown fence: only fence characters, indented by at most three spaces (caret
# lines under source code such as "    ~~~~^^^^" are indented further and carry carets).
_FENCE_LINE = re.compile(r"^ {0,3}(?:`{3,}|~{3,})[ \t]*$", re.MULTILINE)
# "pkg.mod.Name: message" or a bare "Name" on a line that starts at column 0.
_EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*)(?::(?: (.*)|$)|$)")


def find_traceback(text: str | None) -> str | None:
    """The traceback pasted into ``text`` (from its first header line), else ``None``.

    People paste tracebacks at the end of prose, often inside a Markdown code fence; the
    traceback runs to the end of the text or to the fence that closes it. A log line
    before the header stays with the prose.
    """
    if not text or TRACEBACK_HEADER not in text:
        return None
    m = _HEADER_LINE.search(text)
    if m is None:
        return None
    block = text[m.start() :]
    fence = _FENCE_LINE.search(block)
    if fence is not None:
        block = block[: fence.start()]
    block = block.strip("\n").rstrip()
    return block or None


def exception_of(traceback: str | None) -> tuple[str | None, str | None]:
    """``(type, message)`` of the exception a traceback ends with.

    The type is the bare class name (``IntegrityError`` for
    ``sqlalchemy.exc.IntegrityError``), as generation-2 reports record it, so the value
    is comparable across generations and library versions. The message runs to the end
    of the text (database and validation errors span several lines). Chained tracebacks
    report their last exception.
    """
    if not traceback:
        return None, None
    text = traceback.rstrip()
    headers = list(_HEADER_LINE.finditer(text))
    start = headers[-1].end() if headers else 0
    lines = text[start:].split("\n")
    for i, line in enumerate(lines):
        # Frame lines, source lines and caret lines are indented; the exception line is not.
        if not line.strip() or line[0] in " \t":
            continue
        m = _EXCEPTION_LINE.match(line)
        if m is None:
            if headers:
                return None, line.strip() or None
            continue
        qualified, first = m.group(1), m.group(2)
        rest = "\n".join([first or "", *lines[i + 1 :]]).strip()
        return qualified.rsplit(".", 1)[-1], rest or None
    return None, None
