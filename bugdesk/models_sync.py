"""Peewee models of the legacy-sync bookkeeping tables (``schema/0002_sync.py``). Writes go through
``bugdesk.service.imports``.

* ``sync_roots``: one row per imported folder (absolute path); paths below are relative to it.
* ``sync_runs``: one row per ``bugdesk sync import``/``watch`` run, with its checkpoint cursor.
* ``sync_files``: every file seen, with the size, mtime and sha256 of what was processed;
  for append-only JSON-lines files also how many bytes and lines were consumed.
* ``sync_entries``: every report candidate seen (a file, a line, an array element) and its
  outcome: ``imported``, ``stale`` (an older copy of an imported id), ``quarantined``,
  ``skipped`` (not a report), ``pending`` (half-written, retried later) or ``removed``.
* ``sync_reports``: per imported report, which copy its data came from and how fresh that
  copy was (so an older copy never overwrites it), the version the importer last wrote
  (so changes made in bugdesk are never overwritten) and its legacy ``duplicate_of`` link.
"""

from __future__ import annotations

from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    CharField,
    ForeignKeyField,
    IntegerField,
    SmallIntegerField,
    TextField,
)

from bugdesk.fields import JSONField, UTCDateTimeField
from bugdesk.models import BaseModel, BugReport

# Entry outcomes.
IMPORTED = "imported"
STALE = "stale"
QUARANTINED = "quarantined"
SKIPPED = "skipped"
PENDING = "pending"
REMOVED = "removed"
# Outcomes `bugdesk sync report` lists.
PROBLEM_OUTCOMES = (QUARANTINED, STALE, SKIPPED, PENDING)

# File statuses: every entry has a final outcome, or something is left to retry.
FILE_DONE = "done"
FILE_PENDING = "pending"

# Link states of a legacy duplicate_of link.
LINK_PENDING = "pending"
LINK_LINKED = "linked"
LINK_DANGLING = "dangling"
LINK_CYCLE = "cycle"
LINK_CONFLICT = "conflict"


class SyncRoot(BaseModel):
    id = AutoField()
    path = TextField(unique=True)
    created_at = UTCDateTimeField()

    class Meta:
        table_name = "sync_roots"


class SyncRun(BaseModel):
    id = AutoField()
    root = ForeignKeyField(SyncRoot, on_delete="CASCADE", backref="runs")
    command = CharField(max_length=16)
    host = CharField(max_length=255)
    pid = IntegerField()
    status = CharField(max_length=16)
    started_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()
    finished_at = UTCDateTimeField(null=True)
    cursor = TextField(null=True)
    files_done = BigIntegerField(default=0)
    entries_done = BigIntegerField(default=0)
    stats = JSONField(null=True)
    error = TextField(null=True)

    class Meta:
        table_name = "sync_runs"


class SyncFile(BaseModel):
    id = BigAutoField()
    root = ForeignKeyField(SyncRoot, on_delete="CASCADE", index=False, backref="files")
    path = TextField()
    kind = CharField(max_length=16)
    size = BigIntegerField()
    mtime_ns = BigIntegerField()
    sha256 = CharField(max_length=64, null=True)
    consumed_bytes = BigIntegerField(default=0)
    consumed_lines = BigIntegerField(default=0)
    entries = IntegerField(default=0)
    status = CharField(max_length=16)
    first_seen_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()
    archived_at = UTCDateTimeField(null=True)
    archive = TextField(null=True)
    deleted_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "sync_files"
        indexes = ((("root", "path"), True),)


class SyncEntry(BaseModel):
    id = BigAutoField()
    file = ForeignKeyField(SyncFile, on_delete="CASCADE", index=False, backref="entries_seen")
    position = BigIntegerField()
    line = BigIntegerField(null=True)
    item_index = BigIntegerField(null=True)
    byte_offset = BigIntegerField(null=True)
    content_hash = CharField(max_length=64)
    # Not indexed: lookups by legacy id go through bug_reports.legacy_id; another index of
    # random keys here would only add pages to every batch's commit.
    legacy_id = CharField(max_length=255, null=True)
    generation = SmallIntegerField(null=True)
    outcome = CharField(max_length=16)
    reason = CharField(max_length=32, null=True)
    message = TextField(null=True)
    warnings = JSONField(null=True)
    report = ForeignKeyField(BugReport, null=True, on_delete="SET NULL", index=False)
    first_seen_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()

    class Meta:
        table_name = "sync_entries"
        indexes = ((("file", "position"), True),)


class SyncReport(BaseModel):
    report = ForeignKeyField(BugReport, on_delete="CASCADE", primary_key=True)
    source_file = ForeignKeyField(SyncFile, null=True, on_delete="SET NULL", index=False)
    source_position = BigIntegerField(null=True)
    copy_key = CharField(max_length=64)
    content_hash = CharField(max_length=64)
    report_version = IntegerField()
    fingerprint = CharField(max_length=64, null=True)
    link_target = CharField(max_length=255, null=True)
    link_state = CharField(max_length=16, null=True)
    imported_at = UTCDateTimeField()
    updated_at = UTCDateTimeField()

    class Meta:
        table_name = "sync_reports"
        indexes = ((("source_file", "source_position"), False),)


SYNC_MODELS = (SyncRoot, SyncRun, SyncFile, SyncEntry, SyncReport)
