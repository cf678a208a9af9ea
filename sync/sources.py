"""Walk a legacy store file by file and read each file's entries, resumably and in bounded memory.

This is :func:`sync.reader.iter_entries` taken apart for an importer that has to resume
and to follow a store that is still being written:

* :func:`walk` lists files (same order as the reader) with their size and mtime *before*
  reading them, so a caller can skip files it already recorded unchanged.
* :func:`read_document` reads one JSON file (an object, an array, or a stray file) with the
  reader's own decoding and classification, and returns the sha256 of its bytes.
* JSON-lines files are never read whole: :func:`plan_lines` scans one sequentially (hashing
  it and counting lines, a few hundred MB/s) and cuts it into byte ranges of whole lines that
  :func:`read_lines` decodes independently (in worker processes). A scan can start where
  the last one stopped, after checking that the bytes before that point are unchanged (the
  sha256 of the consumed prefix), so lines appended to an inbox are the only ones read again.
  A last line without its newline is taken only once the file has been quiet for the
  settle time; until then the writer may still be appending to it.

The decoding of documents and lines is the reader's (``_document``, ``_line_entry``):
one implementation of the legacy formats, used here on bytes this module reads itself.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from sync import reader
from sync.reader import NOT_A_REPORT, UNREADABLE, Entry, Quarantine

__all__ = [
    "FileInfo",
    "LineRange",
    "framing_of",
    "looks_like_document",
    "plan_lines",
    "read_document",
    "read_lines",
    "stat_file",
    "walk",
]

_BLOCK = 1 << 20
_WHITESPACE = b" \t\r\n\x0b\x0c"


@dataclass(slots=True)
class FileInfo:
    """A file under the walked root: ``rel`` is relative to it with ``/`` separators."""

    rel: str
    path: str
    size: int = 0
    mtime_ns: int = 0
    framing: str | None = None  # "json", "jsonl", or None for names that are no JSON file
    error: Quarantine | None = None

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9


@dataclass(slots=True)
class LineRange:
    """Whole lines ``[start, end)`` of a JSON-lines file, ``first_line`` being the number of the first.

    ``prefix_sha256`` is the hash of the file's bytes ``[0, end)``. The last range of a scan
    (``final``) says how far the file is consumed and whether a partial last line was left
    for later (``complete`` false). A scan with nothing new yields one empty final range.
    """

    start: int
    end: int
    first_line: int
    last_line: int
    prefix_sha256: str
    final: bool = False
    complete: bool = True
    restarted: bool = False
    empty_file: bool = False
    mtime_ns: int = 0
    size: int = 0


def framing_of(name: str) -> str | None:
    """``"json"``, ``"jsonl"`` or ``None``, by the reader's file-name rules."""
    return reader._framing_of(name)


def walk(root: str) -> Iterator[FileInfo]:
    """Every file under ``root``, in the reader's sorted order, stat-ed but not read.

    Directory symlinks are not followed (they could loop); they and unreadable
    directories come as :class:`FileInfo` with an ``error``.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"legacy store directory not found: {root}")
    yield from _walk(root, "")


def _walk(directory: str, prefix: str) -> Iterator[FileInfo]:
    # Names only (not DirEntry objects) are held and sorted: a flat store may keep a
    # million files in one folder.
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        rel = prefix.rstrip("/") or "."
        yield FileInfo(rel, directory, error=Quarantine(UNREADABLE, str(exc.strerror or exc)))
        return
    for name in names:
        rel, path = prefix + name, os.path.join(directory, name)
        try:
            st = os.lstat(path)
        except OSError as exc:
            yield FileInfo(rel, path, framing=framing_of(name), error=Quarantine(UNREADABLE, str(exc.strerror or exc)))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, rel + "/")
        elif stat.S_ISLNK(st.st_mode):
            if os.path.isdir(path):
                yield FileInfo(rel, path, error=Quarantine(NOT_A_REPORT, "symlink to a directory, not followed"))
            else:
                yield stat_file(path, rel)
        else:
            yield _info(path, rel, name, st)


def _info(path: str, rel: str, name: str, st: os.stat_result) -> FileInfo:
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or a device would block or never end when read.
        return FileInfo(rel, path, error=Quarantine(NOT_A_REPORT, "not a regular file"))
    return FileInfo(rel, path, st.st_size, st.st_mtime_ns, framing_of(name))


def stat_file(path: str, rel: str) -> FileInfo:
    """A :class:`FileInfo` for one file (an ``unreadable`` one when it cannot be stat-ed)."""
    name = rel.rsplit("/", 1)[-1]
    try:
        st = os.stat(path)
    except OSError as exc:
        return FileInfo(rel, path, framing=framing_of(name), error=Quarantine(UNREADABLE, str(exc.strerror or exc)))
    return _info(path, rel, name, st)


def read_document(info: FileInfo) -> tuple[list[Entry], str | None, int, int]:
    """``(entries, sha256, size, mtime_ns)`` of a file read whole, classified as the reader does.

    Size and mtime are those of the open file, so they match the bytes read even when the
    file changed since :func:`walk` saw it.
    """
    try:
        fd = os.open(info.path, os.O_RDONLY)
    except OSError as exc:
        return [_unreadable(info, exc)], None, info.size, info.mtime_ns
    try:
        st = os.fstat(fd)
        if info.framing is None:
            digest = hashlib.sha256()
            while chunk := os.read(fd, _BLOCK):
                digest.update(chunk)
            name = info.rel.rsplit("/", 1)[-1]
            error = Quarantine(NOT_A_REPORT, f"not a JSON file name ({name!r})")
            entry = Entry(info.rel, content_hash=digest.hexdigest(), mtime=st.st_mtime, error=error)
            return [entry], digest.hexdigest(), st.st_size, st.st_mtime_ns
        data = _read_all(fd, st.st_size)
    except OSError as exc:
        return [_unreadable(info, exc)], None, info.size, info.mtime_ns
    finally:
        os.close(fd)
    entries = list(reader._document(data, info.rel, st.st_mtime))
    return entries, hashlib.sha256(data).hexdigest(), len(data), st.st_mtime_ns


def _read_all(fd: int, size: int) -> bytes:
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while chunk := os.read(fd, _BLOCK):
        parts.append(chunk)
    return b"".join(parts)


def _unreadable(info: FileInfo, exc: OSError) -> Entry:
    return Entry(info.rel, error=Quarantine(UNREADABLE, str(exc.strerror or exc)))


def looks_like_document(path: str) -> bool:
    """A ``.jsonl`` file whose first line is a lone ``{`` or ``[`` holds one pretty-printed document."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return reader._looks_like_document(head)


def plan_lines(
    info: FileInfo,
    *,
    start: int = 0,
    first_line: int = 1,
    prefix_sha256: str | None = None,
    settle_before_ns: int = 0,
    range_bytes: int = 2 << 20,
) -> Iterator[LineRange]:
    """Cut a JSON-lines file into ranges of whole lines, from ``start`` on.

    ``start``/``first_line``/``prefix_sha256`` describe what an earlier scan consumed; when
    the file is shorter than that or its first ``start`` bytes hash differently, it was
    rewritten and the scan starts again at 0 (``restarted``). A partial last line is
    included only when the file's mtime is before ``settle_before_ns``.
    """
    with open(info.path, "rb", buffering=0) as f:
        st = os.fstat(f.fileno())
        size, mtime_ns = st.st_size, st.st_mtime_ns
        digest = hashlib.sha256()
        restarted = start == 0
        if start > 0 and (prefix_sha256 is None or size < start or _hash_prefix(f, start, digest) != prefix_sha256):
            digest = hashlib.sha256()
            start, first_line, restarted = 0, 1, True
        f.seek(start)
        pos = start
        if start == 0:
            head = f.read(3)
            if head == codecs.BOM_UTF8:
                digest.update(head)
                pos = 3
            else:
                f.seek(0)
        yield from _ranges(f, digest, pos, first_line, size, mtime_ns, settle_before_ns, range_bytes, restarted)


def _hash_prefix(f: BinaryIO, length: int, digest: Any) -> str:
    f.seek(0)
    left = length
    while left > 0:
        chunk = f.read(min(_BLOCK, left))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    return digest.copy().hexdigest()


def _ranges(
    f: BinaryIO,
    digest: Any,
    pos: int,
    line: int,
    size: int,
    mtime_ns: int,
    settle_ns: int,
    range_bytes: int,
    restarted: bool,
) -> Iterator[LineRange]:
    range_start, range_line, newlines = pos, line, 0
    block_pos = pos
    # The hash at the end of the last complete line, for when a partial last line is left out.
    at_last_newline, last_newline_end = digest.copy(), pos
    content = False
    while block := f.read(_BLOCK):
        content = content or bool(block.strip(_WHITESPACE))
        done = 0  # bytes of this block already counted and hashed
        while True:
            target = max(done, range_start + range_bytes - 1 - block_pos)
            cut = block.find(b"\n", target) if target < len(block) else -1
            if cut < 0:
                break
            newlines += block.count(b"\n", done, cut + 1)
            digest.update(block[done : cut + 1])
            done = cut + 1
            end = block_pos + done
            yield LineRange(range_start, end, range_line, range_line + newlines - 1, digest.hexdigest())
            range_start, range_line, newlines = end, range_line + newlines, 0
            at_last_newline, last_newline_end = digest.copy(), end
        k = block.rfind(b"\n", done)
        if k >= 0:
            newlines += block.count(b"\n", done, k + 1)
            digest.update(block[done : k + 1])
            done = k + 1
            at_last_newline, last_newline_end = digest.copy(), block_pos + done
        digest.update(block[done:])
        block_pos += len(block)
    tail = block_pos - last_newline_end
    final = LineRange(range_start, block_pos, range_line, range_line + newlines - 1, digest.hexdigest(), final=True)
    if tail and mtime_ns >= settle_ns:
        # A partial last line of a file written a moment ago: the writer may not be done.
        final.end, final.prefix_sha256, final.complete = last_newline_end, at_last_newline.hexdigest(), False
    elif tail:
        final.last_line += 1  # the unterminated last line is a line too
    final.restarted, final.empty_file, final.mtime_ns, final.size = restarted, restarted and not content, mtime_ns, size
    yield final


def read_lines(info: FileInfo, rng: LineRange) -> list[Entry]:
    """The entries of the lines in ``rng`` (blank lines have none, as in the reader)."""
    if rng.end <= rng.start:
        return []
    try:
        with open(info.path, "rb", buffering=0) as f:
            f.seek(rng.start)
            data = f.read(rng.end - rng.start)
    except OSError as exc:
        return [_unreadable(info, exc)]
    entries = []
    offset = rng.start
    mtime = rng.mtime_ns / 1e9 if rng.mtime_ns else info.mtime
    number = rng.first_line
    pieces = data.split(b"\n")
    if data.endswith(b"\n"):
        pieces.pop()
    for raw in pieces:
        line = raw.rstrip(b"\r")
        if line.strip():
            entries.append(reader._line_entry(line, info.rel, number, offset, mtime))
        offset += len(raw) + 1
        number += 1
    return entries
