"""Legacy sync bookkeeping: imported folders, runs, files, entries (files/lines/array elements) and imported reports.

Frozen copy of ``bugdesk/models_sync.py`` as it was when this migration was written;
later changes come as new numbered scripts, never as edits here.
"""

from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    CharField,
    ForeignKeyField,
    IntegerField,
    Model,
    SmallIntegerField,
    TextField,
)

from bugdesk.fields import JSONField, UTCDateTimeField, UUIDField

# A few hundred problem entries among millions: `bugdesk sync report` reads them through
# this index instead of scanning every entry. Pending link resolution likewise.
PARTIAL_INDEXES = (
    "CREATE INDEX ix_sync_entries_problems ON sync_entries (outcome, file_id, position) WHERE outcome <> 'imported'",
    "CREATE INDEX ix_sync_reports_links ON sync_reports (link_state) WHERE link_state IN ('pending', 'dangling')",
)

TABLES = ("sync_reports", "sync_entries", "sync_files", "sync_runs", "sync_roots")


def up(migrator, db):
    class BugReport(Model):
        # Only the key is needed to point foreign keys at the existing table.
        id = UUIDField(primary_key=True)

        class Meta:
            database = db
            table_name = "bug_reports"

    class SyncRoot(Model):
        id = AutoField()
        path = TextField(unique=True)
        created_at = UTCDateTimeField()

        class Meta:
            database = db
            table_name = "sync_roots"

    class SyncRun(Model):
        id = AutoField()
        root = ForeignKeyField(SyncRoot, on_delete="CASCADE")
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
            database = db
            table_name = "sync_runs"

    class SyncFile(Model):
        id = BigAutoField()
        root = ForeignKeyField(SyncRoot, on_delete="CASCADE", index=False)
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
            database = db
            table_name = "sync_files"
            indexes = ((("root", "path"), True),)

    class SyncEntry(Model):
        id = BigAutoField()
        file = ForeignKeyField(SyncFile, on_delete="CASCADE", index=False)
        position = BigIntegerField()
        line = BigIntegerField(null=True)
        item_index = BigIntegerField(null=True)
        byte_offset = BigIntegerField(null=True)
        content_hash = CharField(max_length=64)
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
            database = db
            table_name = "sync_entries"
            indexes = ((("file", "position"), True),)

    class SyncReport(Model):
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
            database = db
            table_name = "sync_reports"
            indexes = ((("source_file", "source_position"), False),)

    db.create_tables([SyncRoot, SyncRun, SyncFile, SyncEntry, SyncReport])
    for sql in PARTIAL_INDEXES:
        db.execute_sql(sql)


def down(migrator, db):
    for table in TABLES:
        db.execute_sql(f'DROP TABLE IF EXISTS "{table}"')
