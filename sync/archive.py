"""`bugdesk sync archive`: pack the imported legacy files into a verified tar.gz, and optionally remove them.

A file goes into the archive only when its import is recorded and its bytes are still the
ones that were imported (sha256 of the file, or for a JSON-lines file of everything it
held when it was last read, which must then be all of it). Every other file is left where
it is and listed: never imported, still pending, or changed since the import.

The archive holds the files under ``store/`` (their paths relative to the imported folder)
and, last, ``manifest.jsonl``: one line per file with its path, sha256, size, outcome and
the ids of the reports it fed. The archive is written to ``FILE.partial``, read back in
full (every member's sha256 compared with the manifest) and only then renamed into place.

With ``delete``, files are removed only after that verification, only if every entry of
the file reached the database (imported, or an older copy of an imported report), and only
if the file still hashes the same right before it is removed. Quarantined files and files
that are not reports are archived but kept (``include_quarantined`` removes them too; the
archive and ``bugdesk sync report`` keep what they were). Directories left empty are removed.
Memory stays flat: the manifest and the list of kept files are spooled to temporary files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bugdesk.models_sync import FILE_DONE, IMPORTED, STALE, SyncRoot
from bugdesk.service import imports
from bugdesk.service._fast import execute
from sync.sources import FileInfo, walk

__all__ = ["ArchiveError", "ArchiveSummary", "archive"]

MANIFEST_NAME = "manifest.jsonl"
STORE_PREFIX = "store/"
_CHUNK = 1 << 20
_LOOKUP = 256
# Why a file stays out of the archive (or on disk).
NEVER_IMPORTED = "never_imported"
PENDING = "pending"
CHANGED = "changed_since_import"
UNREADABLE = "unreadable"
KEPT_QUARANTINED = "quarantined_kept"
CHANGED_AFTER_ARCHIVING = "changed_after_archiving"


class ArchiveError(Exception):
    """The archive could not be written or did not verify; nothing was deleted."""


@dataclass
class ArchiveSummary:
    archive: str
    archived: int = 0
    archived_bytes: int = 0
    deleted: int = 0
    kept: Counter = field(default_factory=Counter)
    kept_listing: str | None = None  # a temporary JSON-lines file: one {"path", "reason"} per kept file
    directories_removed: int = 0

    @property
    def exit_code(self) -> int:
        """0 every file was archived (and removed when asked), 1 some files were kept and are listed."""
        return 1 if sum(self.kept.values()) else 0

    def kept_files(self) -> Iterator[dict[str, str]]:
        if self.kept_listing is None:
            return
        with open(self.kept_listing, encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    def as_dict(self, *, listing: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "archive": self.archive,
            "archived": self.archived,
            "archived_bytes": self.archived_bytes,
            "deleted": self.deleted,
            "kept": dict(sorted(self.kept.items())),
            "directories_removed": self.directories_removed,
        }
        if listing:
            data["kept_files"] = list(self.kept_files())
        return data

    def close(self) -> None:
        if self.kept_listing is not None and os.path.exists(self.kept_listing):
            os.unlink(self.kept_listing)


@dataclass(slots=True)
class _Candidate:
    info: FileInfo
    sha256: str
    outcome: str
    deletable: bool
    report_ids: list[str]


def archive(
    root: str | os.PathLike[str], to: str | os.PathLike[str], *, delete: bool = False, include_quarantined: bool = False
) -> ArchiveSummary:
    """Archive the imported files of ``root`` into ``to`` (a new .tar.gz), optionally removing them.

    Raises :class:`ArchiveError` (nothing deleted, no archive left behind) when the archive
    cannot be written or does not verify, and ``FileNotFoundError`` when ``root`` is missing.
    """
    root_path = os.path.realpath(os.fspath(root))
    if not os.path.isdir(root_path):
        raise FileNotFoundError(f"legacy store directory not found: {root_path}")
    target = Path(to).resolve()
    if target.exists():
        raise ArchiveError(f"{target} already exists; choose a new archive name")
    partial = target.with_name(target.name + ".partial")
    summary = ArchiveSummary(archive=str(target))
    root_row = SyncRoot.get_or_none(SyncRoot.path == root_path)
    root_id = root_row.id if root_row is not None else None
    skip = {str(target), str(partial)}
    with (
        tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as kept,
        tempfile.TemporaryFile("w+b") as manifest,
    ):
        summary.kept_listing = kept.name
        try:
            with tarfile.open(partial, "w:gz") as tar:
                for candidate in _candidates(root_path, root_id, skip, kept, summary):
                    _add(tar, candidate, manifest, kept, summary)
                manifest.flush()
                info = tarfile.TarInfo(MANIFEST_NAME)
                info.size = manifest.tell()
                manifest.seek(0)
                tar.addfile(info, manifest)
            _verify(partial, manifest)
            os.replace(partial, target)
        except BaseException:
            if partial.exists():
                partial.unlink()
            raise
        if root_id is not None:
            _record(root_id, manifest, str(target))
        if delete:
            _delete(root_path, root_id, manifest, kept, summary, include_quarantined)
    return summary


def _candidates(
    root_path: str, root_id: int | None, skip: set[str], kept: IO[str], summary: ArchiveSummary
) -> Iterator[_Candidate]:
    """Files whose recorded import still matches their bytes; the others go to the kept listing."""
    batch: list[FileInfo] = []

    def check(files: list[FileInfo]) -> Iterator[_Candidate]:
        rows = imports.file_rows(root_id, [f.rel for f in files]) if root_id is not None else {}
        entries = _entries(root_id, [rows[f.rel].id for f in files if f.rel in rows])
        for info in files:
            row = rows.get(info.rel)
            if row is None:
                _keep(kept, summary, info.rel, NEVER_IMPORTED)
                continue
            if row.status != FILE_DONE or row.sha256 is None:
                _keep(kept, summary, info.rel, PENDING)
                continue
            covered = row.consumed_bytes if row.kind == "lines" else row.size
            if info.size != covered:
                _keep(kept, summary, info.rel, CHANGED)
                continue
            sha = _sha256(info.path)
            if sha is None:
                _keep(kept, summary, info.rel, UNREADABLE)
                continue
            if sha != row.sha256:
                _keep(kept, summary, info.rel, CHANGED)
                continue
            outcomes = entries.get(row.id, [])
            into_db = bool(outcomes) and all(o in (IMPORTED, STALE) for o, _ in outcomes)
            report_ids = sorted({r for _, r in outcomes if r})
            outcome = "imported" if into_db else ",".join(sorted({o for o, _ in outcomes})) or "empty"
            yield _Candidate(info, sha, outcome, into_db, report_ids)

    for info in walk(root_path):
        if info.path in skip or info.error is not None:
            if info.error is not None:
                _keep(kept, summary, info.rel, UNREADABLE)
            continue
        batch.append(info)
        if len(batch) >= _LOOKUP:
            yield from check(batch)
            batch = []
    if batch:
        yield from check(batch)


def _entries(root_id: int | None, file_ids: list[int]) -> dict[int, list[tuple[str, str | None]]]:
    """(outcome, report id) of every current entry of the given files."""
    out: dict[int, list[tuple[str, str | None]]] = {}
    if root_id is None:
        return out
    for start in range(0, len(file_ids), 500):
        chunk = file_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        cursor = execute(
            f"SELECT file_id, outcome, report_id FROM sync_entries WHERE file_id IN ({marks}) AND outcome <> 'removed'",
            chunk,
        )
        for file_id, outcome, report_id in cursor.fetchall():
            out.setdefault(file_id, []).append((outcome, str(report_id) if report_id else None))
    return out


def _sha256(path: str) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


class _HashingReader(io.RawIOBase):
    """A file read for the tar that hashes what it hands over."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.f.read(size)
        self.digest.update(data)
        return data


def _add(tar: tarfile.TarFile, candidate: _Candidate, manifest: IO[bytes], kept: IO[str], summary: ArchiveSummary):
    info = candidate.info
    try:
        with open(info.path, "rb") as f:
            st = os.fstat(f.fileno())
            member = tarfile.TarInfo(STORE_PREFIX + info.rel)
            member.size, member.mtime, member.mode = st.st_size, int(st.st_mtime), 0o644
            reader = _HashingReader(f)
            tar.addfile(member, reader)
    except (OSError, tarfile.TarError) as exc:
        raise ArchiveError(f"could not add {info.rel}: {exc}") from exc
    sha = reader.digest.hexdigest()
    # Written between the check and the copy: archived as read, but never deleted.
    deletable = candidate.deletable and sha == candidate.sha256
    if sha != candidate.sha256:
        _keep(kept, summary, info.rel, CHANGED_AFTER_ARCHIVING)
    line = {
        "path": info.rel,
        "sha256": sha,
        "size": member.size,
        "outcome": candidate.outcome,
        "report_ids": candidate.report_ids,
        "deletable": deletable,
    }
    manifest.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")
    summary.archived += 1
    summary.archived_bytes += member.size


def _verify(path: Path, manifest: IO[bytes]) -> None:
    """Read the whole archive back: every member present, in order, with the manifest's sha256."""
    manifest.seek(0)
    manifest_sha = _sha256_of(manifest)
    manifest.seek(0)
    expected = (json.loads(line) for line in manifest)
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name == MANIFEST_NAME:
                    if _sha256_of(tar.extractfile(member)) != manifest_sha:
                        raise ArchiveError("archive verification failed: the manifest does not read back")
                    continue
                want = next(expected, None)
                if want is None or member.name != STORE_PREFIX + want["path"]:
                    raise ArchiveError(f"archive verification failed: unexpected member {member.name}")
                if _sha256_of(tar.extractfile(member)) != want["sha256"]:
                    raise ArchiveError(f"archive verification failed: {member.name} does not match its sha256")
            if next(expected, None) is not None:
                raise ArchiveError("archive verification failed: members are missing")
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"archive verification failed: {exc}") from exc


def _sha256_of(f: IO[bytes] | None) -> str:
    digest = hashlib.sha256()
    while f is not None and (chunk := f.read(_CHUNK)):
        digest.update(chunk)
    return digest.hexdigest()


def _record(root_id: int, manifest: IO[bytes], archive_path: str) -> None:
    manifest.seek(0)
    paths: list[str] = []
    for line in manifest:
        paths.append(json.loads(line)["path"])
        if len(paths) >= 1000:
            imports.mark_archived(root_id, paths, archive_path)
            paths = []
    if paths:
        imports.mark_archived(root_id, paths, archive_path)


def _delete(
    root_path: str,
    root_id: int | None,
    manifest: IO[bytes],
    kept: IO[str],
    summary: ArchiveSummary,
    include_quarantined: bool,
) -> None:
    manifest.seek(0)
    removed: list[str] = []
    directories: set[str] = set()
    for text in manifest:
        line = json.loads(text)
        path = os.path.join(root_path, line["path"])
        if not line["deletable"] and not (include_quarantined and line["outcome"] != "imported"):
            if line["outcome"] != "imported":
                _keep(kept, summary, line["path"], KEPT_QUARANTINED)
            continue
        # Re-hashed right before removal: a writer may have touched it since the archive was read.
        if _sha256(path) != line["sha256"]:
            _keep(kept, summary, line["path"], CHANGED_AFTER_ARCHIVING)
            continue
        os.unlink(path)
        summary.deleted += 1
        removed.append(line["path"])
        directories.add(os.path.dirname(path))
        if len(removed) >= 1000 and root_id is not None:
            imports.mark_deleted(root_id, removed)
            removed = []
    if removed and root_id is not None:
        imports.mark_deleted(root_id, removed)
    summary.directories_removed = _prune(root_path, directories)


def _prune(root_path: str, directories: set[str]) -> int:
    """Remove directories emptied by the deletion (deepest first), never the root itself."""
    removed = 0
    for directory in sorted(directories, key=lambda d: d.count(os.sep), reverse=True):
        current = directory
        while current != root_path and current.startswith(root_path + os.sep):
            try:
                os.rmdir(current)
            except OSError:
                break
            removed += 1
            current = os.path.dirname(current)
    return removed


def _keep(kept: IO[str], summary: ArchiveSummary, path: str, reason: str) -> None:
    summary.kept[reason] += 1
    kept.write(json.dumps({"path": path, "reason": reason}, ensure_ascii=False) + "\n")
