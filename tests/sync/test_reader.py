"""Tests for sync.reader: discovery, decoding and classification of legacy store files."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from sync.reader import (
    EMPTY_FILE,
    INVALID_JSON,
    NOT_A_REPORT,
    UNKNOWN_FORMAT,
    Entry,
    decode_bytes,
    detect_generation,
    iter_entries,
)

GEN1 = {
    "id": "BR-000007",
    "title": "Crash on save",
    "body": "It broke.",
    "level": "high",
    "reported_by": "user:3",
    "created": "2023-05-01 10:22:01",
    "status": "open",
}
GEN2 = {
    "version": 2,
    "report_id": "6f1c1b7e-0000-4000-8000-000000000002",
    "summary": "Page is slow",
    "severity": "P2",
    "reporter": {"id": "12", "kind": "user"},
    "created_at": "2024-06-01T10:22:01Z",
    "status": "new",
}
GEN3 = {
    "schema": "bugreport/3",
    "id": "6f1c1b7e-0000-4000-8000-000000000003",
    "title": "Crash in handler",
    "severity": "low",
    "status": "new",
    "created_at": 1740828121000,
}


def write(root: Path, rel: str, data: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def read_all(root: Path) -> list[Entry]:
    return list(iter_entries(root))


def only(root: Path) -> Entry:
    entries = read_all(root)
    assert len(entries) == 1, entries
    return entries[0]


# --- generations and classification --------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "generation"),
    [
        (GEN1, 1),
        (GEN2, 2),
        (GEN3, 3),
        ({**GEN2, "version": "2"}, 2),
        ({"id": "X-1", "level": "low"}, 1),
        ({"schema": "BugReport/3 ", "id": "x"}, 3),
        ({"report_id": "x", "version": 3}, None),
        ({"id": 7, "level": "low"}, None),
        ({"id": "BR-1", "title": "t", "reported_by": "cron", "created": "2023-01-01"}, 1),
        ({"id": "x", "title": "t", "created": "2023-01-01"}, None),
        ({"title": "no marker", "status": "new"}, None),
    ],
)
def test_generation_is_told_by_marker_keys(obj: dict, generation: int | None) -> None:
    assert detect_generation(obj) == generation


def test_a_json_report_file_is_one_entry_with_id_hash_and_mtime(tmp_path: Path) -> None:
    path = write(tmp_path, "2023/05/01/BR-000007.json", json.dumps(GEN1, indent=4))
    entry = only(tmp_path)
    assert entry.path == "2023/05/01/BR-000007.json"
    assert (entry.line, entry.index, entry.error) == (None, None, None)
    assert entry.generation == 1
    assert entry.legacy_id == "BR-000007"
    assert entry.raw == GEN1
    assert entry.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry.mtime == os.stat(path).st_mtime


def test_entries_come_in_sorted_path_order(tmp_path: Path) -> None:
    for rel in ("b/2.json", "a/z.json", "a/b/1.json", "c.json"):
        write(tmp_path, rel, json.dumps(GEN3))
    assert [e.path for e in read_all(tmp_path)] == ["a/b/1.json", "a/z.json", "b/2.json", "c.json"]


def test_backup_and_copy_names_are_read_as_reports(tmp_path: Path) -> None:
    write(tmp_path, "R.json", json.dumps(GEN3))
    write(tmp_path, "R.json.bak", json.dumps(GEN3))
    write(tmp_path, "R (1).json", json.dumps(GEN3))
    write(tmp_path, "R.JSON~", json.dumps(GEN3))
    entries = read_all(tmp_path)
    assert len(entries) == 4
    assert {e.legacy_id for e in entries} == {GEN3["id"]}
    assert all(e.error is None and e.generation == 3 for e in entries)


@pytest.mark.parametrize("name", ["README.txt", "notes.md", ".DS_Store", "report.json.gz", "x"])
def test_files_without_a_json_name_are_not_reports(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, b"\x00\x00\x00\x01Bud1" if name == ".DS_Store" else b"hello\n")
    entry = only(tmp_path)
    assert entry.error is not None and entry.error.reason == NOT_A_REPORT
    assert entry.raw is None and entry.generation is None
    assert entry.content_hash == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_json_without_report_fields_is_not_a_report(tmp_path: Path) -> None:
    write(tmp_path, "settings.json", json.dumps({"retention_days": 30, "root": "x", "version": 2}))
    entry = only(tmp_path)
    assert entry.error is not None and entry.error.reason == NOT_A_REPORT
    assert "retention_days" in entry.error.message


def test_json_scalar_is_not_a_report(tmp_path: Path) -> None:
    write(tmp_path, "n.json", "42")
    assert only(tmp_path).error.reason == NOT_A_REPORT


@pytest.mark.parametrize(
    "obj",
    [
        {"title": "Broken", "status": "open", "created": "2023-01-01"},
        {"schema": "bugreport/4", "id": "x", "title": "t"},
        {"report_id": "x", "version": 3, "summary": "t"},
    ],
)
def test_report_like_json_without_a_known_generation_is_unknown_format(tmp_path: Path, obj: dict) -> None:
    write(tmp_path, "r.json", json.dumps(obj))
    entry = only(tmp_path)
    assert entry.error is not None and entry.error.reason == UNKNOWN_FORMAT
    assert entry.raw == obj and entry.generation is None


# --- decoding ----------------------------------------------------------------------------


def test_utf8_bom_is_stripped(tmp_path: Path) -> None:
    write(tmp_path, "r.json", b"\xef\xbb\xbf" + json.dumps(GEN1).encode())
    entry = only(tmp_path)
    assert entry.error is None and entry.raw == GEN1 and entry.warnings == []


def test_latin1_file_is_decoded_with_a_warning(tmp_path: Path) -> None:
    obj = {**GEN1, "body": "Kunde: José Müller, Hauptstraße 5"}
    write(tmp_path, "r.json", json.dumps(obj, ensure_ascii=False).encode("latin-1"))
    entry = only(tmp_path)
    assert entry.error is None
    assert entry.raw["body"] == "Kunde: José Müller, Hauptstraße 5"
    assert len(entry.warnings) == 1 and "not valid UTF-8" in entry.warnings[0]


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    write(tmp_path, "r.json", json.dumps(GEN3).encode("utf-16"))
    assert only(tmp_path).raw == GEN3


def test_decode_bytes_names_the_first_bad_byte() -> None:
    text, warning = decode_bytes(b'{"a": "caf\xe9"}')
    assert text == '{"a": "café"}'
    assert warning is not None and "0xE9 at offset 10" in warning


def test_empty_file(tmp_path: Path) -> None:
    write(tmp_path, "r.json", b"")
    entry = only(tmp_path)
    assert entry.error.reason == EMPTY_FILE and entry.legacy_id is None


def test_whitespace_only_file_is_empty(tmp_path: Path) -> None:
    write(tmp_path, "r.json", b"  \n\n")
    assert only(tmp_path).error.reason == EMPTY_FILE


def test_truncated_file_is_invalid_json_and_keeps_the_salvaged_id(tmp_path: Path) -> None:
    text = json.dumps(GEN1, indent=4)
    write(tmp_path, "r.json", text[: len(text) // 2])
    entry = only(tmp_path)
    assert entry.error.reason == INVALID_JSON
    assert "line" in entry.error.message and "ends early" in entry.error.message
    assert entry.legacy_id == "BR-000007" and entry.raw is None


def test_truncated_inside_a_string_is_reported_as_truncation(tmp_path: Path) -> None:
    write(tmp_path, "r.json", '{"id": "BR-1", "level": "low", "title": "half a ti')
    assert "ends early" in only(tmp_path).error.message


def test_trailing_comma_is_named(tmp_path: Path) -> None:
    write(tmp_path, "r.json", json.dumps(GEN2, indent=2)[:-2] + ",\n}")
    entry = only(tmp_path)
    assert entry.error.reason == INVALID_JSON
    assert "trailing comma before '}'" in entry.error.message
    assert entry.legacy_id == GEN2["report_id"]


def test_python_repr_is_named(tmp_path: Path) -> None:
    write(tmp_path, "r.json", repr({**GEN3, "duplicate_of": None, "x": True}))
    entry = only(tmp_path)
    assert entry.error.reason == INVALID_JSON
    assert "Python repr" in entry.error.message
    assert entry.legacy_id == GEN3["id"]


def test_all_nul_file(tmp_path: Path) -> None:
    write(tmp_path, "r.json", b"\x00" * 700)
    entry = only(tmp_path)
    assert entry.error.reason == INVALID_JSON
    assert entry.error.message == "file contains only NUL bytes (700 bytes)"


def test_nul_run_in_the_middle_names_its_offset(tmp_path: Path) -> None:
    data = bytearray(json.dumps(GEN1, indent=4).encode())
    data[40:60] = b"\x00" * 20
    write(tmp_path, "r.json", bytes(data))
    entry = only(tmp_path)
    assert entry.error.reason == INVALID_JSON
    assert "NUL bytes at offset 40 (20 NUL bytes" in entry.error.message


# --- arrays and JSON lines -----------------------------------------------------------------


def test_array_gives_one_entry_per_element_with_index(tmp_path: Path) -> None:
    other = {**GEN2, "report_id": "another"}
    write(tmp_path, "exports/batch.json", json.dumps([GEN2, other], indent=2))
    entries = read_all(tmp_path)
    assert [(e.index, e.line, e.legacy_id) for e in entries] == [
        (0, None, GEN2["report_id"]),
        (1, None, "another"),
    ]
    canonical = json.dumps(GEN2, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entries[0].content_hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_array_element_that_is_no_report_is_classified_alone(tmp_path: Path) -> None:
    write(tmp_path, "b.json", json.dumps([GEN2, "noise", {"title": "t", "status": "x"}]))
    entries = read_all(tmp_path)
    assert [e.error and e.error.reason for e in entries] == [None, NOT_A_REPORT, UNKNOWN_FORMAT]


def test_empty_array_is_one_empty_entry(tmp_path: Path) -> None:
    write(tmp_path, "b.json", "[]")
    assert only(tmp_path).error.reason == EMPTY_FILE


def test_jsonl_gives_one_entry_per_non_empty_line(tmp_path: Path) -> None:
    lines = [
        json.dumps(GEN3).encode(),
        b"",
        b"--- agent-sink restarted ---",
        repr(GEN3).encode(),
        b'{"schema": "bugreport/3", "id": "',
        json.dumps({**GEN3, "id": "second"}).encode() + b"\r",
    ]
    data = b"\n".join(lines) + b"\n"
    write(tmp_path, "inbox.jsonl", data)
    entries = read_all(tmp_path)
    assert [e.line for e in entries] == [1, 3, 4, 5, 6]
    assert [e.error and e.error.reason for e in entries] == [
        None,
        INVALID_JSON,
        INVALID_JSON,
        INVALID_JSON,
        None,
    ]
    assert entries[1].legacy_id is None
    assert "line 3" in entries[1].error.message and "agent-sink" in entries[1].error.message
    assert "Python repr" in entries[2].error.message
    assert entries[2].legacy_id == GEN3["id"]
    assert entries[3].legacy_id is None
    assert entries[4].legacy_id == "second"
    for entry in entries:
        raw_line = data[entry.offset :].split(b"\n", 1)[0].rstrip(b"\r")
        assert entry.content_hash == hashlib.sha256(raw_line).hexdigest()


def test_jsonl_line_with_nul_bytes(tmp_path: Path) -> None:
    write(tmp_path, "i.jsonl", b'{"schema": "bugreport/3", "id": "abc"\x00\x00\x00}\n')
    entry = only(tmp_path)
    assert entry.error.reason == INVALID_JSON
    assert entry.error.message.startswith("line 1 contains NUL bytes at offset 37")
    assert entry.legacy_id == "abc"


def test_jsonl_latin1_line_is_decoded_alone(tmp_path: Path) -> None:
    good = json.dumps(GEN3).encode()
    bad = json.dumps({**GEN3, "id": "l1", "title": "Café"}, ensure_ascii=False).encode("latin-1")
    write(tmp_path, "i.jsonl", good + b"\n" + bad + b"\n")
    first, second = read_all(tmp_path)
    assert first.warnings == []
    assert second.raw["title"] == "Café" and "line 2" in second.warnings[0]


def test_json_file_holding_json_lines_is_read_line_by_line(tmp_path: Path) -> None:
    write(tmp_path, "r.json", json.dumps(GEN3) + "\n" + json.dumps({**GEN3, "id": "b"}) + "\n")
    assert [(e.line, e.legacy_id) for e in read_all(tmp_path)] == [(1, GEN3["id"]), (2, "b")]


def test_jsonl_file_holding_one_pretty_document_is_read_whole(tmp_path: Path) -> None:
    write(tmp_path, "r.jsonl", json.dumps(GEN3, indent=2))
    entry = only(tmp_path)
    assert entry.line is None and entry.raw == GEN3


def test_blank_jsonl_is_empty(tmp_path: Path) -> None:
    write(tmp_path, "i.jsonl", b"\n\n")
    assert only(tmp_path).error.reason == EMPTY_FILE


def test_directory_symlinks_are_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "a/r.json", json.dumps(GEN3))
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    entries = read_all(tmp_path)
    assert [(e.path, e.error and e.error.reason) for e in entries] == [
        ("a/r.json", None),
        ("loop", NOT_A_REPORT),
    ]


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_all(tmp_path / "nowhere")
