"""Stack frames and Python tracebacks: data model, tolerant text parser, frame-list adapters.

`parse_traceback` reads tracebacks as Python prints them, also when they are embedded in other
text (a log line before, prose around, a Markdown fence), chained ("The above exception was the
direct cause ..." / "During handling of the above exception ..."), with or without source and
caret lines. `frames_from_list` reads structured frames (the legacy gen-2 shape and Sentry's).
Neither raises on bad input.

`scan_traceback` is the allocation-light core both the parser and the fingerprint hot path use:
it returns plain tuples, because building frozen dataclasses for 40 frames costs more than
fingerprinting them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "ExceptionInfo",
    "Frame",
    "ParsedTrace",
    "frames_from_list",
    "is_library_path",
    "parse_traceback",
    "scan_traceback",
]


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame; every field may be unknown."""

    filename: str | None
    module: str | None
    function: str | None
    lineno: int | None
    in_app: bool | None


@dataclass(frozen=True, slots=True)
class ExceptionInfo:
    """One exception of a (possibly chained) traceback: its type as printed, message, frames."""

    type: str | None
    message: str | None
    frames: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class ParsedTrace:
    """A parsed traceback: outermost cause first, the raised exception last."""

    exceptions: tuple[ExceptionInfo, ...]

    @property
    def last(self) -> ExceptionInfo | None:
        """The exception that was finally raised (None for an empty trace)."""
        return self.exceptions[-1] if self.exceptions else None


# --------------------------------------------------------------------------------------------
# library / in-app classification of a path
# --------------------------------------------------------------------------------------------
# A frame is library code when its file lives in an installed-packages directory, a virtualenv,
# a Python installation's stdlib directory (lib/python3.12/, Lib\ on Windows, a framework build)
# or is a pseudo-file such as "<frozen importlib._bootstrap>" or "<string>". Everything else is
# the application's own code.
_LIBRARY_RE = re.compile(
    r"""
      (?:^|/)(?:site-packages|dist-packages|\.?venv[\w.-]*|virtualenvs?|\.tox|\.nox|__pypackages__)/
    | (?:^|/)lib(?:64)?/(?:python|pypy)\d*(?:\.\d+)*t?/
    | (?:^|/)python\d*(?:\.\d+)*/lib/
    | /Python\.framework/
    | \.egg/
    | ^<
    """,
    re.VERBOSE | re.IGNORECASE,
)


@lru_cache(maxsize=16384)
def is_library_path(path: str | None) -> bool:
    """True when `path` is a third-party or stdlib file (site-packages, lib/pythonX.Y, <frozen>)."""
    if not isinstance(path, str) or not path:
        return False
    return _LIBRARY_RE.search(path.replace("\\", "/")) is not None


# --------------------------------------------------------------------------------------------
# text tracebacks
# --------------------------------------------------------------------------------------------
_HEADER = "Traceback (most recent call last):"
_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"
# Anchored on a newline (not `^` with re.M) so the regex engine can use a literal-prefix scan;
# findall() then hands back plain tuples, which keeps a 40-frame traceback in a few microseconds.
_FRAME_RE = re.compile(r'\n[ \t]*File "([^"\n]*)", line (\d+)(?:, in (\S+))?')
# "module.sub.ErrorType: message", "KeyError: 'x'", or a bare "ErrorType".
_EXC_LINE_RE = re.compile(r"([A-Za-z_][\w.<>]*)(?::[ \t]?(.*))?")
_MAX_TAIL = 8192  # characters read after the last frame (descriptions may hold 2 MiB of log)
_MAX_MESSAGE_LINES = 40

# A raw frame is (filename, line number as digits, function or ""); a raw exception is
# (type as printed or None, message or None, raw frames outermost first).
RawFrame = tuple[str, str, str]
RawException = tuple[str | None, str | None, list[RawFrame]]


def scan_traceback(text: str) -> list[RawException]:
    """Parse traceback text into raw exception tuples, outermost cause first; [] when none.

    A block starts at each "Traceback (most recent call last):" header; frames are the
    `File "...", line N, in f` lines inside it; the exception line is the first line after the
    frames that is not indented deeper than the frame lines (source and caret lines are).
    Text with frame lines but no header (a bridge that dropped it) counts as one block.
    """
    if not isinstance(text, str) or 'File "' not in text:
        return []
    starts = []
    pos = text.find(_HEADER)
    while pos != -1:
        starts.append(pos + len(_HEADER))
        pos = text.find(_HEADER, pos + len(_HEADER))
    if not starts:
        text = "\n" + text  # the frame regex wants a newline before each frame line
        first = _FRAME_RE.search(text)
        if first is None:
            return []
        starts = [first.start()]
    out: list[RawException] = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(text)
        out.append(_scan_block(text, start, end))
    return out


def _scan_block(text: str, start: int, end: int) -> RawException:
    frames = _FRAME_RE.findall(text, start, end)
    if frames:
        # where the last frame line starts and ends: the exception line follows it
        file, line, _func = frames[-1]
        pos = text.rfind(f'File "{file}", line {line}', start, end)
        line_start = text.rfind("\n", start, pos) + 1
        indent = pos - line_start
        tail_from = text.find("\n", pos, end)
        if tail_from == -1:
            return None, None, frames
    else:
        indent, tail_from = -1, start
    tail = text[tail_from : min(end, tail_from + _MAX_TAIL)]
    exc_type, message = _exception_line(tail, indent)
    return exc_type, message, frames


def _exception_line(tail: str, frame_indent: int) -> tuple[str | None, str | None]:
    """Find "Type: message" after the frames; the message runs to the next block or a fence."""
    lines = tail.split("\n", _MAX_MESSAGE_LINES + 8)
    i = 1 if frame_indent >= 0 else 0  # lines[0] is the rest of the last frame line
    n = len(lines)
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("[Previous line repeated"):
            i += 1
            continue
        if frame_indent >= 0 and len(line) - len(line.lstrip()) > frame_indent:
            i += 1  # a source line or a caret line of the last frame
            continue
        break
    if i >= n:
        return None, None
    first = lines[i].strip()
    if first.startswith((_CAUSE, _CONTEXT, "```")):
        return None, None
    m = _EXC_LINE_RE.fullmatch(first)
    if m is None:
        return None, None
    exc_type, message = m.group(1), m.group(2)
    more = []
    rest = lines[i + 1 : i + _MAX_MESSAGE_LINES]
    for j, line in enumerate(rest):
        s = line.strip()
        if s.startswith((_CAUSE, _CONTEXT, "```")):
            break
        if not s and not _continues(rest, j + 1):
            break  # prose after the traceback, not part of the message
        more.append(line.rstrip())
    while more and not more[-1]:
        more.pop()
    if more:
        message = "\n".join([message or "", *more]).strip("\n") or None
    return exc_type, (message if message else None)


# After a blank line a message goes on only with indented or bracketed lines ("[SQL: ...]",
# "(Background on this error at: ...)") or "DETAIL:"-style labels, as database drivers print.
_CONTINUATION_RE = re.compile(r"[ \t]|[(\[{<]|[A-Z]{2,}:")


def _continues(lines: list[str], j: int) -> bool:
    while j < len(lines) and not lines[j].strip():
        j += 1
    if j >= len(lines):
        return False
    return _CONTINUATION_RE.match(lines[j]) is not None


def parse_traceback(text: str) -> ParsedTrace | None:
    """Parse a printed Python traceback (possibly embedded in prose); None when there is none."""
    try:
        raw = scan_traceback(text)
    except Exception:  # a parser for pasted text must never take the caller down
        return None
    if not raw:
        return None
    excs = tuple(
        ExceptionInfo(
            type=exc_type,
            message=message,
            frames=tuple(Frame(f, None, fn or None, int(ln), not is_library_path(f)) for f, ln, fn in frames),
        )
        for exc_type, message, frames in raw
    )
    if not any(e.frames or e.type for e in excs):
        return None
    return ParsedTrace(exceptions=excs)


# --------------------------------------------------------------------------------------------
# structured frames
# --------------------------------------------------------------------------------------------
def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def frames_from_list(items: Iterable[object] | None) -> tuple[Frame, ...]:
    """Frames from legacy gen-2 `{file, line, function, module}` or Sentry `{filename, abs_path,
    module, function, lineno, in_app}` dicts, outermost first; garbage entries are skipped."""
    if not isinstance(items, list | tuple):
        return ()
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        # abs_path tells library code apart (site-packages); Sentry's filename is often relative
        filename = _str(item.get("abs_path")) or _str(item.get("filename")) or _str(item.get("file"))
        module = _str(item.get("module"))
        function = _str(item.get("function"))
        if filename is None and module is None and function is None:
            continue
        lineno = _int(item.get("lineno"))
        if lineno is None:
            lineno = _int(item.get("line"))
        in_app = item.get("in_app")
        if not isinstance(in_app, bool):
            in_app = None if filename is None else not is_library_path(filename)
        out.append(Frame(filename, module, function, lineno, in_app))
    return tuple(out)
