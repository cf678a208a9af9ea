"""`bugdesk sync import` and `bugdesk sync report` through Typer's runner: exit codes, summaries, the JSON listing."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from bugdesk.cli import app

runner = CliRunner()
OLD = 1_700_000_000


def report(legacy_id: str, **changes: object) -> str:
    obj = {
        "schema": "bugreport/3",
        "id": legacy_id,
        "title": f"cli report {legacy_id}",
        "severity": "urgent",  # no vocabulary knows it: imported with a warning
        "status": "new",
        "source": "agent",
        "reporter_id": "agent:a",
        "created_at": "2025-01-10T10:00:00Z",
        "events": [],
        **changes,
    }
    return json.dumps(obj)


def store_with(tmp_path: Path, files: dict[str, str]) -> Path:
    store = tmp_path / "store"
    for name, text in files.items():
        path = store / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (OLD, OLD))
    return store


def test_a_clean_store_exits_0_and_a_second_run_reports_everything_unchanged(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"a.json": report("A"), "inbox.jsonl": report("B") + "\n" + report("C") + "\n"})
    db = str(tmp_path / "bugdesk.db")
    first = runner.invoke(app, ["--db", db, "sync", "import", str(store), "--json", "--jobs", "0"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["imported"], summary["warnings"], summary["quarantined"]) == (3, 3, {})
    again = runner.invoke(app, ["--db", db, "sync", "import", str(store), "--jobs", "0", "--json"])
    assert again.exit_code == 0
    assert (json.loads(again.stdout)["imported"], json.loads(again.stdout)["unchanged"]) == (0, 3)
    assert (summary["bulk"], json.loads(again.stdout)["bulk"]) == (True, False)  # a backfill, then a re-run
    table = runner.invoke(app, ["--db", db, "sync", "import", str(store), "--jobs", "0"])
    assert table.exit_code == 0 and "unchanged entries" in table.stdout


def test_quarantined_entries_exit_1_and_are_listed_as_json_with_their_location(tmp_path: Path) -> None:
    store = store_with(
        tmp_path,
        {
            "2025/a.json": report("A"),
            "2025/b.json": '{"schema": "bugreport/3", "id": "B", "title": "cut',
            "exports/batch.json": "[" + report("C") + ", " + report("D", title="") + "]",
            "inbox.jsonl": report("E") + "\n--- sink restarted ---\n",
            "notes.md": "# not a report",
        },
    )
    db = str(tmp_path / "bugdesk.db")
    result = runner.invoke(app, ["--db", db, "sync", "import", str(store), "--jobs", "0"])
    assert result.exit_code == 1, result.output
    assert "quarantined: invalid_json" in result.stdout and "bugdesk sync report" in result.stdout
    listed = runner.invoke(app, ["--db", db, "sync", "report", "--json"])
    assert listed.exit_code == 0
    rows = {(r["path"], r["line"], r["index"]): r for r in json.loads(listed.stdout)}
    assert set(rows) == {("2025/b.json", None, None), ("exports/batch.json", None, 1), ("inbox.jsonl", 2, None),
                         ("notes.md", None, None)}  # fmt: skip
    assert rows["2025/b.json", None, None]["legacy_id"] == "B"
    assert rows["exports/batch.json", None, 1]["reason"] == "missing_title"
    garbage = rows["inbox.jsonl", 2, None]
    assert garbage["reason"] == "invalid_json" and "sink restarted" in garbage["message"]
    assert rows["notes.md", None, None]["outcome"] == "skipped"
    for row in rows.values():
        assert {"path", "line", "index", "legacy_id", "reason", "message"} <= set(row)
    only = runner.invoke(app, ["--db", db, "sync", "report", "--json", "--reason", "missing_title"])
    assert [r["legacy_id"] for r in json.loads(only.stdout)] == ["D"]


def test_a_dry_run_says_so_and_leaves_the_database_empty(tmp_path: Path) -> None:
    store = store_with(tmp_path, {"a.json": report("A")})
    db = str(tmp_path / "bugdesk.db")
    result = runner.invoke(app, ["--db", db, "sync", "import", str(store), "--dry-run", "--jobs", "0"])
    assert result.exit_code == 0 and "dry run: nothing was written" in result.stdout
    listed = runner.invoke(app, ["--db", db, "status", "--json"])
    assert json.loads(listed.stdout)["total"] == 0


def test_a_missing_folder_is_refused_with_exit_code_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", str(tmp_path / "b.db"), "sync", "import", str(tmp_path / "nope")])
    assert result.exit_code == 2


def test_no_bulk_loads_with_every_index_kept_and_bulk_forces_it_on_a_database_that_has_reports(tmp_path: Path) -> None:
    db = str(tmp_path / "bugdesk.db")
    first = store_with(tmp_path / "one", {"a.json": report("A")})
    plain = runner.invoke(app, ["--db", db, "sync", "import", str(first), "--json", "--jobs", "0", "--no-bulk"])
    assert plain.exit_code == 0, plain.output
    assert (json.loads(plain.stdout)["bulk"], json.loads(plain.stdout)["index_seconds"]) == (False, 0)
    second = store_with(tmp_path / "two", {"b.json": report("B")})
    forced = runner.invoke(app, ["--db", db, "sync", "import", str(second), "--json", "--jobs", "0", "--bulk"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["bulk"] is True and json.loads(forced.stdout)["imported"] == 1
    doctor = runner.invoke(app, ["--db", db, "doctor", "--json"])
    assert doctor.exit_code == 0, doctor.output
