"""Operations: consistent backups, restores, and the `doctor` health checks.

SQLite backups use the online backup API, which copies a consistent snapshot
while other connections keep writing. PostgreSQL backups are `pg_dump` custom
archives (restored with `pg_restore`), the tools made for it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from peewee import SQL, Database, fn

from bugdesk import db as dbmod
from bugdesk import deferred
from bugdesk.clock import utcnow
from bugdesk.errors import BugdeskError
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent


class OpsError(BugdeskError):
    title = "operation failed"


def _sqlite_path(url: str) -> Path:
    url = dbmod.normalize_url(url)
    if not url.startswith("sqlite:///"):
        raise OpsError(f"{url.split('://')[0]} URL given where a SQLite file was expected")
    return Path(url[len("sqlite:///") :])


def backup(url: str, out: Path) -> dict[str, Any]:
    """Write a consistent copy of the database at ``url`` to ``out`` while it stays in use."""
    out = Path(out)
    if out.exists():
        raise OpsError(f"{out} exists; choose a new file name (backups are never overwritten)")
    url = dbmod.normalize_url(url)
    if url.startswith("postgres"):
        _require("pg_dump")
        subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={out}", url], check=True)
        return {"kind": "pg_dump", "path": str(out), "bytes": out.stat().st_size}
    source = _sqlite_path(url)
    if not source.exists():
        raise OpsError(f"no database at {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(out)
    try:
        # Copies page by page under a read transaction: writers in other processes
        # carry on (WAL), and the copy is the database as of the start.
        src.backup(dst)
        reports = dst.execute("SELECT COUNT(*) FROM bug_reports").fetchone()[0]
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        dst.close()
        src.close()
    if check != "ok":
        out.unlink(missing_ok=True)
        raise OpsError(f"the backup failed its integrity check ({check}); nothing was kept")
    return {"kind": "sqlite", "path": str(out), "bytes": out.stat().st_size, "reports": reports}


def restore(backup_file: Path, url: str, *, force: bool = False) -> dict[str, Any]:
    """Restore ``backup_file`` into the database at ``url`` (a new SQLite file, or an empty PostgreSQL database)."""
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise OpsError(f"no backup file at {backup_file}")
    url = dbmod.normalize_url(url)
    if url.startswith("postgres"):
        _require("pg_restore")
        args = ["pg_restore", "--no-owner", f"--dbname={url}"]
        if force:
            args += ["--clean", "--if-exists"]
        subprocess.run([*args, str(backup_file)], check=True)
        return {"kind": "pg_restore", "target": url.rsplit("@", 1)[-1]}
    target = _sqlite_path(url)
    if target.exists() and not force:
        raise OpsError(f"{target} exists; restore into a new path, or pass --force to replace it")
    check = sqlite3.connect(backup_file)
    try:
        verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
        reports = check.execute("SELECT COUNT(*) FROM bug_reports").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise OpsError(f"{backup_file} is not a bugdesk SQLite backup: {exc}") from exc
    finally:
        check.close()
    if verdict != "ok":
        raise OpsError(f"{backup_file} fails its integrity check ({verdict}); not restored")
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(backup_file, tmp)
    tmp.replace(target)  # atomic on one filesystem: readers see the old or the new file, never half
    return {"kind": "sqlite", "target": str(target), "reports": reports}


def _require(tool: str) -> None:
    if shutil.which(tool) is None:
        raise OpsError(f"{tool} is not installed; install the PostgreSQL client tools (e.g. postgresql-client)")


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    examples: list[Any] = field(default_factory=list)


def doctor(database: Database, *, lease_grace: timedelta = timedelta(minutes=5)) -> list[Finding]:
    """Run every health check; each finding says what was checked and what is wrong."""
    findings = []
    if dbmod.is_sqlite(database):
        verdict = database.execute_sql("PRAGMA integrity_check").fetchone()[0]
        findings.append(Finding("sqlite integrity", verdict == "ok", verdict))
        broken = database.execute_sql("PRAGMA foreign_key_check").fetchall()
        findings.append(Finding("foreign keys", not broken, f"{len(broken)} dangling references",
                                [list(r) for r in broken[:5]]))  # fmt: skip
    pending = dbmod.pending_migrations(database)
    findings.append(Finding("migrations", not pending, "up to date" if not pending else
                            f"pending: {', '.join(pending)}; run `bugdesk db upgrade`"))  # fmt: skip
    findings.append(_deferred_indexes(database))
    findings.append(_dedup_counts())
    findings.append(_stale_leases(lease_grace))
    findings.append(_reports_without_origin())
    return findings


def _deferred_indexes(database: Database) -> Finding:
    """Indexes a bulk load set aside are back, or held by a load that still runs."""
    held = deferred.recorded(database)
    if not held:
        return Finding("deferred indexes", True, "none set aside")
    owners = sorted({f"pid {d.owner_pid} on {d.owner_host}" for d in held})
    alive = any(d.owner_alive for d in held)
    detail = f"{len(held)} set aside by a bulk load ({', '.join(owners)}), " + (
        "which is still running; they come back when it ends"
        if alive
        else "which is gone; any command that opens the database, or `bugdesk db upgrade`, builds them again"
    )
    return Finding("deferred indexes", alive, detail, [d.name for d in held[:5]])


def _dedup_counts() -> Finding:
    """Each fingerprint's count equals the reports carrying it, less those split out of its group by hand."""
    split_out = BugReport.details.contains('"split_from"')
    carried = dict(
        BugReport.select(BugReport.fingerprint, fn.COUNT(SQL("*")))
        .where(BugReport.fingerprint.is_null(False), ~split_out | BugReport.details.is_null())
        .group_by(BugReport.fingerprint)
        .tuples()
    )
    wrong = [
        {"fingerprint": fp, "occurrences": n, "reports": carried.get(fp, 0)}
        for fp, n in BugReportDedup.select(BugReportDedup.fingerprint, BugReportDedup.occurrences).tuples()
        if carried.get(fp, 0) != n
    ]
    return Finding("dedup counts", not wrong, f"{len(wrong)} fingerprints whose count disagrees with their reports",
                   wrong[:5])  # fmt: skip


def _stale_leases(grace: timedelta) -> Finding:
    cutoff = utcnow() - grace
    stale = list(
        BugReport.select(BugReport.number, BugReport.claimed_by)
        .where(BugReport.claimed_by.is_null(False), BugReport.claim_expires_at < cutoff)
        .limit(5)
        .tuples()
    )
    return Finding("stale leases", not stale,
                   "no lease expired unnoticed" if not stale else
                   "leases expired but not swept (no claim-next ran): `bugdesk` sweeps them on the next claim",
                   stale)  # fmt: skip


def _reports_without_origin() -> Finding:
    """Every report has the event that brought it in (created or imported)."""
    origin = BugReportEvent.select(BugReportEvent.id).where(
        (BugReportEvent.report == BugReport.id) & BugReportEvent.kind.in_(["created", "imported"])
    )
    orphans = list(BugReport.select(BugReport.number).where(~fn.EXISTS(origin)).limit(5).tuples())
    return Finding("report origins", not orphans,
                   "every report has its created/imported event" if not orphans else
                   "reports without a created or imported event", [n for (n,) in orphans])  # fmt: skip
