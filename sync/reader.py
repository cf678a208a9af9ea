"""Stream the entries of a legacy JSON bug-report store, one decoded report candidate at a time.

:func:`iter_entries` walks a store directory in sorted order and yields one
:class:`Entry` per report candidate: a ``*.json`` file holding one object, each element of
a ``*.json`` array, each non-empty line of a ``*.jsonl`` file, and one entry for every
file that is not a report at all. Nothing here knows the store's own component names,
people or file names; files are told apart by extension and by content:

* **JSON-ish names** are ``*.json``, ``*.jsonl`` and ``*.ndjson`` (any case), also with
  backup suffixes appended (``.bak``, ``.orig``, ``.old``, ``.backup``, ``.save``,
  ``.1``, ``~``); editor copies such as ``X (1).json`` are plain ``.json`` files. Every
  other file (``.txt``, ``.md``, ``.DS_Store``, ...) is ``not_a_report`` without parsing.
* The **extension is only a hint for the framing**: a ``.json`` file that holds several
  JSON values, one per line, is read as JSON lines, and a ``.jsonl`` file whose first
  line is a lone ``{`` or ``[`` is read as one pretty-printed document.
* A parsed **object** is a report of generation 1, 2 or 3 when it carries that
  generation's marker keys (see :func:`detect_generation`). An object without a marker
  is ``unknown_format`` when it looks like a bug report (an unknown ``schema``
  ``bugreport/N``, a ``report_id``, or at least two field names used by any
  generation), and ``not_a_report`` otherwise (configuration files and the like).
  A JSON value that is no object (string, number, an array without objects) is
  ``not_a_report``.

Broken files become entries carrying a :class:`Quarantine`: ``empty_file`` (0 bytes or
whitespace only), ``invalid_json`` (NUL bytes, truncation, trailing commas, Python
reprs, garbage lines; the message names the position and the likely cause) and
``unreadable`` (the operating system refused to read it). Even then the entry carries
the report id when it can be salvaged from the text, so a quarantine can name it.
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "EMPTY_FILE",
    "INVALID_JSON",
    "MISSING_ID",
    "MISSING_TITLE",
    "NOT_A_REPORT",
    "STALE_DUPLICATE",
    "UNKNOWN_FORMAT",
    "UNREADABLE",
    "Entry",
    "Quarantine",
    "decode_bytes",
    "detect_generation",
    "iter_entries",
    "legacy_id_of",
]

# Quarantine reasons (the manifest's vocabulary plus the ones this reader adds).
INVALID_JSON = "invalid_json"
EMPTY_FILE = "empty_file"
NOT_A_REPORT = "not_a_report"
UNKNOWN_FORMAT = "unknown_format"
UNREADABLE = "unreadable"
MISSING_TITLE = "missing_title"
MISSING_ID = "missing_id"
STALE_DUPLICATE = "stale_duplicate"


@dataclass(frozen=True, slots=True)
class Quarantine:
    """Why an entry is not imported: a machine reason and a message for humans."""

    reason: str
    message: str


@dataclass(slots=True)
class Entry:
    """One report candidate found in the store.

    ``path`` is relative to the walked root (POSIX separators). ``line`` (1-based) is set
    for JSON-lines files, ``index`` (0-based) for elements of a JSON array; ``offset`` is
    the byte offset of a line, which lets a caller resume an append-only file.
    ``content_hash`` is the sha256 of the file's bytes, of the line's bytes (without the
    newline) or of the array element's canonical JSON. ``mtime`` is the file's
    modification time in epoch seconds. ``warnings`` carries decoding remarks such as a
    Latin-1 fallback.

    ``raw`` is the parsed object (also for ``unknown_format`` objects) and ``None`` for
    anything that did not parse to an object. ``legacy_id`` comes from ``raw`` when
    there is one, and is otherwise salvaged from the text of a broken file where an
    ``"id"``/``"report_id"`` pair is still legible (truncated files, Python reprs).
    ``error`` is ``None`` for entries that may be mapped.
    """

    path: str
    line: int | None = None
    index: int | None = None
    raw: dict[str, Any] | None = None
    generation: int | None = None
    legacy_id: str | None = None
    content_hash: str = ""
    mtime: float = 0.0
    error: Quarantine | None = None
    warnings: list[str] = field(default_factory=list)
    offset: int | None = None


# --- names -------------------------------------------------------------------------------

_JSON_NAME = re.compile(r"\.(json|jsonl|ndjson)(?:\.(?:bak|backup|orig|old|save|sav|\d+)|~)*$", re.IGNORECASE)


def _framing_of(name: str) -> str | None:
    """``"json"``, ``"jsonl"`` or ``None`` (not a JSON-ish file name)."""
    m = _JSON_NAME.search(name)
    if m is None:
        return None
    return "json" if m.group(1).lower() == "json" else "jsonl"


# --- generations -------------------------------------------------------------------------

# Field names used by any generation; an object without a generation marker that carries
# two of these is a report in an unknown format rather than some unrelated JSON file.
_REPORT_FIELDS = frozenset(
    {
        "id",
        "report_id",
        "title",
        "summary",
        "body",
        "description",
        "level",
        "severity",
        "status",
        "created",
        "created_at",
        "updated_at",
        "reported_by",
        "reporter",
        "reporter_id",
        "assignee",
        "assignee_id",
        "traceback",
        "stacktrace",
        "exception",
        "stack",
        "notes",
        "events",
        "telemetry",
        "context",
        "resolution",
        "duplicate_of",
    }
)


_GEN1_ONLY_FIELDS = frozenset({"reported_by", "created", "body", "traceback"})


def detect_generation(obj: dict[str, Any]) -> int | None:
    """The generation (1, 2 or 3) whose marker keys ``obj`` carries, else ``None``.

    gen 3: ``"schema": "bugreport/3"``; gen 2: ``"version": 2`` with ``report_id``;
    gen 1: a string ``id`` with a ``level``, or with two other keys only generation 1
    used (``reported_by``, ``created``, ``body``, ``traceback``), so a gen-1 file that
    lost its level is still recognised. The ``BR-`` prefix of gen-1 ids is not required,
    so stores whose CLI numbered reports differently are still read. When several
    markers are present the newest generation wins.
    """
    schema = obj.get("schema")
    if isinstance(schema, str) and schema.strip().lower() == "bugreport/3":
        return 3
    if "report_id" in obj and obj.get("version") in (2, "2"):
        return 2
    if isinstance(obj.get("id"), str) and ("level" in obj or len(_GEN1_ONLY_FIELDS.intersection(obj)) >= 2):
        return 1
    return None


def _classify(value: Any) -> tuple[int | None, Quarantine | None]:
    if not isinstance(value, dict):
        kind = "array" if isinstance(value, list) else type(value).__name__
        return None, Quarantine(NOT_A_REPORT, f"JSON {kind} value is not a report object")
    generation = detect_generation(value)
    if generation is not None:
        return generation, None
    schema = value.get("schema")
    if isinstance(schema, str) and schema.strip().lower().startswith("bugreport/"):
        return None, Quarantine(UNKNOWN_FORMAT, f"unknown report schema {schema!r}")
    if "report_id" in value:
        return None, Quarantine(UNKNOWN_FORMAT, f"report_id with unsupported version {value.get('version')!r}")
    known = sorted(_REPORT_FIELDS.intersection(value))
    if len(known) >= 2:
        return None, Quarantine(
            UNKNOWN_FORMAT,
            f"object with report fields ({', '.join(known[:6])}) but no generation marker",
        )
    keys = ", ".join(sorted(map(str, value))[:6]) or "none"
    return None, Quarantine(NOT_A_REPORT, f"JSON object without report fields (keys: {keys})")


def legacy_id_of(obj: dict[str, Any], generation: int | None = None) -> str | None:
    """The report id of a parsed object (``report_id`` for gen 2, ``id`` otherwise)."""
    keys = ("report_id", "id") if generation in (2, None) else ("id", "report_id")
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


# Salvages an id from text that does not parse (truncated, Python repr); "report_id" is
# preferred because gen-2 files also hold a nested reporter "id".
_ID_SALVAGE = re.compile(r"""["'](report_id|id)["']\s*:\s*["']([^"'\\\s]{1,200})["']""")
_SALVAGE_WINDOW = 8192


def _salvage_id(text: str) -> str | None:
    found: dict[str, str] = {}
    for m in _ID_SALVAGE.finditer(text, 0, _SALVAGE_WINDOW):
        found.setdefault(m.group(1), m.group(2))
    return found.get("report_id") or found.get("id")


# --- decoding ----------------------------------------------------------------------------

_BOM_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def decode_bytes(data: bytes) -> tuple[str, str | None]:
    """Decode file bytes to text and return ``(text, warning or None)``.

    A UTF-8 BOM is dropped and a UTF-16 BOM honoured. Bytes that are not valid UTF-8 are
    decoded as Windows-1252 (the usual "re-saved as Latin-1" encoding, which also maps
    0x80-0x9F to printable characters) and, where even that fails, as Latin-1, which
    accepts every byte; the warning names the first offending byte.
    """
    if data[:3] == codecs.BOM_UTF8:
        data = data[3:]
    elif data[:2] in _BOM_UTF16:
        try:
            return data.decode("utf-16"), None
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        bad = f"byte 0x{data[exc.start]:02X} at offset {exc.start}"
    try:
        text, encoding = data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        text, encoding = data.decode("latin-1"), "Latin-1"
    return text, f"not valid UTF-8 ({bad}); decoded as {encoding}"


def _nul_problem(data: bytes) -> str | None:
    first = data.find(b"\x00")
    if first < 0:
        return None
    count = data.count(b"\x00")
    if count == len(data):
        return f"only NUL bytes ({count} bytes)"
    return f"NUL bytes at offset {first} ({count} NUL bytes in {len(data)})"


def _json_problem(text: str, exc: json.JSONDecodeError) -> str:
    """A precise message for a JSON error, with the likely cause where one is recognisable."""
    where = f"{exc.msg} (line {exc.lineno}, column {exc.colno}, char {exc.pos})"
    stripped = text.rstrip()
    # The scanner says "Unterminated string" only when the input ends inside a string
    # (a newline inside one is an "Invalid control character" instead).
    if exc.pos >= len(stripped) or exc.msg.startswith("Unterminated string"):
        return f"{where}: data ends early (truncated after {len(text)} characters?)"
    if exc.msg.startswith("Extra data"):
        return f"{where}: more than one JSON value"
    if text[exc.pos] in "}]":
        before = text[: exc.pos].rstrip()
        if before.endswith(","):
            return f"{where}: trailing comma before {text[exc.pos]!r}"
    head = text.lstrip()[:2]
    if head in ("{'", "['") or (head[:1] in ("{", "[") and _python_literal(text) is not None):
        return f"{where}: looks like a Python repr (single quotes, None/True), not JSON"
    return where


_LITERAL_LIMIT = 1 << 20


def _python_literal(text: str) -> Any:
    # Only used on the (rare) failure path, and bounded: literal_eval cannot run code but
    # can be slow on very large inputs.
    if len(text) > _LITERAL_LIMIT:
        return None
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- walking -----------------------------------------------------------------------------

_CHUNK = 1 << 20


def iter_entries(root: Path | str) -> Iterator[Entry]:
    """Yield every entry of the store under ``root`` in a deterministic (sorted) order.

    Files are read one at a time and never all at once; directory symlinks are not
    followed (they could loop) but reported as ``not_a_report``. Paths in the entries
    are relative to ``root``. A missing ``root`` raises ``FileNotFoundError``; problems
    below it become ``unreadable`` entries.
    """
    top = os.fspath(root)
    if not os.path.isdir(top):
        raise FileNotFoundError(f"legacy store directory not found: {top}")
    yield from _walk(top, "")


def _walk(directory: str, prefix: str) -> Iterator[Entry]:
    try:
        with os.scandir(directory) as it:
            children = sorted(it, key=lambda d: d.name)
    except OSError as exc:
        yield _unreadable(prefix.rstrip("/") or ".", exc)
        return
    for child in children:
        rel = prefix + child.name
        try:
            is_dir = child.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            yield from _walk(child.path, rel + "/")
        elif child.is_symlink() and os.path.isdir(child.path):
            error = Quarantine(NOT_A_REPORT, "symlink to a directory, not followed")
            yield Entry(rel, error=error)
        else:
            yield from _read_file(child.path, rel, child.name)


def _unreadable(rel: str, exc: OSError) -> Entry:
    return Entry(rel, error=Quarantine(UNREADABLE, str(exc.strerror or exc)))


def _read_file(path: str, rel: str, name: str) -> Iterator[Entry]:
    framing = _framing_of(name)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        yield _unreadable(rel, exc)
        return
    try:
        # fstat on the open descriptor: one call for the mtime and the size, no extra lookup.
        st = os.fstat(fd)
        mtime = st.st_mtime
        if framing is None:
            # Not parsed at all, only hashed (in chunks: a stray may be a large log file).
            digest = hashlib.sha256()
            while chunk := os.read(fd, _CHUNK):
                digest.update(chunk)
            error = Quarantine(NOT_A_REPORT, f"not a JSON file name ({name!r})")
            yield Entry(rel, content_hash=digest.hexdigest(), mtime=mtime, error=error)
            return
        data = _read_all(fd, st.st_size)
    except OSError as exc:
        yield _unreadable(rel, exc)
        return
    finally:
        os.close(fd)
    if framing == "jsonl" and not _looks_like_document(data):
        yield from _lines(data, rel, mtime)
    else:
        yield from _document(data, rel, mtime)


def _read_all(fd: int, size: int) -> bytes:
    # One read is the common case; loop because a file may grow or a read may be short.
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while chunk := os.read(fd, _CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def _looks_like_document(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    first = head.split(b"\n", 1)[0].strip()
    return first in (b"{", b"[")


def _document(data: bytes, rel: str, mtime: float) -> Iterator[Entry]:
    """Entries of a file holding one JSON document (an object or an array of them)."""
    digest = hashlib.sha256(data).hexdigest()

    def broken(reason: str, message: str, text: str = "", warnings: list[str] | None = None):
        return Entry(
            rel,
            legacy_id=_salvage_id(text) if text else None,
            content_hash=digest,
            mtime=mtime,
            error=Quarantine(reason, message),
            warnings=warnings or [],
        )

    if not data:
        yield broken(EMPTY_FILE, "file is empty (0 bytes)")
        return
    # UTF-16 text is full of NUL bytes by design; check it after decoding instead.
    utf16 = data[:2] in _BOM_UTF16
    problem = None if utf16 else _nul_problem(data)
    if problem is not None:
        text = data.replace(b"\x00", b"").decode("utf-8", "replace")
        yield broken(INVALID_JSON, f"file contains {problem}", text)
        return
    text, warning = decode_bytes(data)
    warnings = [warning] if warning else []
    if utf16 and "\x00" in text:
        yield broken(INVALID_JSON, f"file contains NUL characters at {text.index(chr(0))}")
        return
    if not text.strip():
        yield broken(EMPTY_FILE, f"file contains only whitespace ({len(data)} bytes)")
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Extra data") and _first_line_parses(text):
            # Several JSON values one per line in a .json file: JSON lines after all.
            yield from _lines(data, rel, mtime)
            return
        yield broken(INVALID_JSON, _json_problem(text, exc), text, warnings)
        return
    except RecursionError:
        yield broken(INVALID_JSON, "JSON nested too deeply", text, warnings)
        return
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for index, element in enumerate(value):
            yield _value_entry(
                element,
                rel,
                index=index,
                content_hash=hashlib.sha256(_canonical(element)).hexdigest(),
                mtime=mtime,
                warnings=list(warnings),
            )
        return
    if isinstance(value, list) and not value:
        yield broken(EMPTY_FILE, "JSON array without elements")
        return
    yield _value_entry(value, rel, content_hash=digest, mtime=mtime, warnings=warnings)


def _value_entry(value: Any, rel: str, **where: Any) -> Entry:
    """The entry for one parsed JSON value, classified by :func:`_classify`."""
    generation, error = _classify(value)
    raw = value if isinstance(value, dict) else None
    legacy_id = legacy_id_of(raw, generation) if raw is not None else None
    return Entry(rel, raw=raw, generation=generation, legacy_id=legacy_id, error=error, **where)


def _first_line_parses(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    try:
        json.loads(first)
    except (json.JSONDecodeError, RecursionError):
        return False
    return True


def _lines(data: bytes, rel: str, mtime: float) -> Iterator[Entry]:
    """Entries of a JSON-lines file: one per non-blank line, each decoded on its own."""
    if not data.strip(b" \t\r\n\x0b\x0c"):
        yield Entry(
            rel,
            content_hash=hashlib.sha256(data).hexdigest(),
            mtime=mtime,
            error=Quarantine(EMPTY_FILE, f"JSON-lines file without lines ({len(data)} bytes)"),
        )
        return
    start = 3 if data[:3] == codecs.BOM_UTF8 else 0
    offset = start
    for number, raw_line in enumerate(data[start:].split(b"\n"), 1):
        line_offset = offset
        offset += len(raw_line) + 1
        line = raw_line.rstrip(b"\r")
        if line.strip():
            yield _line_entry(line, rel, number, line_offset, mtime)


def _line_entry(line: bytes, rel: str, number: int, offset: int, mtime: float) -> Entry:
    where = {
        "line": number,
        "offset": offset,
        "mtime": mtime,
        "content_hash": hashlib.sha256(line).hexdigest(),
    }
    problem = _nul_problem(line)
    if problem is not None:
        text = line.replace(b"\x00", b"").decode("utf-8", "replace")
        error = Quarantine(INVALID_JSON, f"line {number} contains {problem}")
        return Entry(rel, legacy_id=_salvage_id(text), error=error, **where)
    text, warning = decode_bytes(line)
    warnings = [f"line {number}: {warning}"] if warning else []
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        message = _json_problem(text, exc).replace("(line 1, column", "(column")
        if exc.pos == 0:
            # Not JSON from the first character: show what is there instead.
            message += f": {text[:60]!r}" + ("..." if len(text) > 60 else "")
        error = Quarantine(INVALID_JSON, f"line {number}: {message}")
        return Entry(rel, legacy_id=_salvage_id(text), error=error, warnings=warnings, **where)
    except RecursionError:
        error = Quarantine(INVALID_JSON, f"line {number}: JSON nested too deeply")
        return Entry(rel, error=error, warnings=warnings, **where)
    return _value_entry(value, rel, warnings=warnings, **where)
