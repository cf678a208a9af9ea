"""`bugdesk sync archive`: only imported, unchanged files go in; the archive is verified before anything is
deleted; files never imported or changed since are never deleted and are listed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bugdesk import db as dbmod
from bugdesk.cli import app
from bugdesk.config import Settings
from bugdesk.models import BugReport
from bugdesk.models_sync import SYNC_MODELS, SyncFile
from sync.archive import ArchiveError, archive
from sync.importer import ImportOptions, run_import

OLD = 1_700_000_000  # an mtime long past any settle time


def _sample_dir() -> Path:
    configured = os.environ.get("BUGDESK_LEGACY_SAMPLE")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared/legacy/sample"


SAMPLE = _sample_dir()


@pytest.fixture
def db(db_url: str) -> Iterator[Any]:
    with dbmod.connected(db_url) as connected:
        if db_url.startswith("postgres"):
            tables = ", ".join(f'"{m._meta.table_name}"' for m in SYNC_MODELS)
            connected.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        yield connected


def gen3(legacy_id: str) -> dict[str, Any]:
    return {
        "schema": "bugreport/3",
        "id": legacy_id,
        "title": f"archived report {legacy_id}",
        "severity": "low",
        "status": "closed",
        "source": "agent",
        "reporter_id": "agent:sentinel-1",
        "created_at": "2025-06-01T08:00:00Z",
        "updated_at": "2025-06-01T08:00:00Z",
        "events": [],
    }


def write(root: Path, name: str, content: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    os.utime(path, (OLD, OLD))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def members(archive_path: Path) -> dict[str, bytes]:
    with tarfile.open(archive_path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def test_only_imported_unchanged_files_are_archived_and_deleted(db, tmp_path: Path) -> None:
    store = tmp_path / "store"
    write(store, "2025/06/a.json", json.dumps(gen3("A")))
    write(store, "2025/06/b.json", json.dumps(gen3("B")))
    write(store, "inbox.jsonl", json.dumps(gen3("L1")) + "\n" + json.dumps(gen3("L2")) + "\n")
    write(store, "broken.json", "{")
    write(store, "README.txt", "not a report")
    run_import(store, settings=Settings(), options=ImportOptions(jobs=0))
    write(store, "2025/06/b.json", json.dumps(gen3("B") | {"title": "edited after the import"}))
    write(store, "2025/07/new.json", json.dumps(gen3("NEW")))
    target = tmp_path / "legacy.tar.gz"

    summary = archive(store, target, delete=True)

    assert summary.kept == {"changed_since_import": 1, "never_imported": 1, "quarantined_kept": 2}
    assert {k["path"]: k["reason"] for k in summary.kept_files()} == {
        "2025/06/b.json": "changed_since_import",
        "2025/07/new.json": "never_imported",
        "README.txt": "quarantined_kept",
        "broken.json": "quarantined_kept",
    }
    assert summary.exit_code == 1
    # Deleted: exactly the files whose every entry reached the database.
    assert sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()) == [
        "2025/06/b.json",
        "2025/07/new.json",
        "README.txt",
        "broken.json",
    ]
    assert not (store / "2025/06/a.json").exists() and (store / "2025/06").is_dir()
    content = members(target)
    manifest = [json.loads(line) for line in content.pop("manifest.jsonl").splitlines()]
    assert sorted(content) == ["store/2025/06/a.json", "store/README.txt", "store/broken.json", "store/inbox.jsonl"]
    by_path = {m["path"]: m for m in manifest}
    for path, data in content.items():
        assert by_path[path.removeprefix("store/")]["sha256"] == hashlib.sha256(data).hexdigest()
    assert by_path["inbox.jsonl"]["report_ids"] == sorted(
        str(BugReport.get(BugReport.legacy_id == i).id) for i in ("L1", "L2")
    )
    assert by_path["broken.json"]["deletable"] is False and by_path["broken.json"]["report_ids"] == []
    rows = {f.path: f for f in SyncFile.select()}
    assert rows["2025/06/a.json"].deleted_at is not None and rows["broken.json"].deleted_at is None
    assert rows["broken.json"].archive == str(target)


def test_without_delete_nothing_is_removed_and_an_existing_archive_is_never_overwritten(db, tmp_path: Path) -> None:
    store = tmp_path / "store"
    write(store, "a.json", json.dumps(gen3("A")))
    before = {p.name: sha256(p) for p in store.iterdir()}
    summary = archive(store, tmp_path / "one.tar.gz")
    assert summary.kept == {"never_imported": 1} and summary.archived == 0
    run_import(store, settings=Settings(), options=ImportOptions(jobs=0))
    summary = archive(store, tmp_path / "two.tar.gz")
    assert summary.archived == 1 and summary.deleted == 0 and summary.exit_code == 0
    assert {p.name: sha256(p) for p in store.iterdir()} == before
    with pytest.raises(ArchiveError, match="already exists"):
        archive(store, tmp_path / "two.tar.gz", delete=True)
    assert (store / "a.json").exists()


def test_a_corrupt_archive_fails_verification_and_deletes_nothing(db, tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "store"
    write(store, "a.json", json.dumps(gen3("A")))
    run_import(store, settings=Settings(), options=ImportOptions(jobs=0))
    import sync.archive as archive_module

    real_add = archive_module._add

    def corrupting_add(tar, candidate, manifest, kept, summary):
        real_add(tar, candidate, manifest, kept, summary)
        manifest.seek(0)
        manifest.write(manifest.read().replace(candidate.sha256.encode(), b"0" * 64))

    monkeypatch.setattr(archive_module, "_add", corrupting_add)
    with pytest.raises(ArchiveError, match="verification failed"):
        archive(store, tmp_path / "bad.tar.gz", delete=True)
    assert (store / "a.json").exists()
    assert not (tmp_path / "bad.tar.gz").exists() and not (tmp_path / "bad.tar.gz.partial").exists()


@pytest.mark.skipif(not (SAMPLE / "MANIFEST.jsonl").is_file(), reason=f"legacy sample store not found at {SAMPLE}")
def test_the_sample_store_archive_refuses_to_delete_what_was_not_imported(db, db_url: str, tmp_path: Path) -> None:
    store = tmp_path / "reports"
    shutil.copytree(SAMPLE / "reports", store)  # copy2 keeps the mtimes: nothing looks half-written
    for path in [store, *store.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    run_import(store, settings=Settings(), options=ImportOptions(jobs=0))
    imported = next(store.rglob("BR-0001*.json"))
    write(store, imported.relative_to(store).as_posix(), imported.read_text(encoding="latin-1") + " ")
    write(store, "2025/10/31/unseen.json", json.dumps(gen3("UNSEEN")))

    runner = CliRunner()
    target = tmp_path / "sample.tar.gz"
    args = ["--db", db_url, "sync", "archive", str(store), "--to", str(target), "--delete", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    kept = {k["path"]: k["reason"] for k in data["kept_files"]}
    assert kept[imported.relative_to(store).as_posix()] == "changed_since_import"
    assert kept["2025/10/31/unseen.json"] == "never_imported"
    left = {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}
    assert left == set(kept)  # everything else was archived, verified and removed
    with open(SAMPLE / "MANIFEST.jsonl", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    quarantined = {
        m["path"].removeprefix("reports/")
        for m in lines
        if m["expected"] == "quarantine" and m["reason"] != "stale_duplicate"
    }
    assert {p for p, reason in kept.items() if reason == "quarantined_kept"} <= quarantined
    assert data["archived"] == data["deleted"] + data["kept"]["quarantined_kept"]
