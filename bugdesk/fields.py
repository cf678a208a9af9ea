"""Portable peewee fields: UTC timestamps, JSON text and UUIDs that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from peewee import Field, SqliteDatabase, TextField

from bugdesk.clock import as_utc

# SQLite compares timestamps as text, so every stored value must have the same
# shape (fixed microseconds, no offset) for ORDER BY and range filters to work.
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UTCDateTimeField(Field):
    """Stored as UTC (``timestamptz`` on PostgreSQL, fixed-width text on SQLite), read back aware."""

    field_type = "UTCDATETIME"

    def db_value(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        value = as_utc(value)
        if self.model is not None and _is_sqlite(self.model._meta.database):
            return value.replace(tzinfo=None).strftime(_SQLITE_FORMAT)
        return value

    def python_value(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return as_utc(value)


def _is_sqlite(database: Any) -> bool:
    database = getattr(database, "obj", database)  # unwrap a DatabaseProxy
    return isinstance(database, SqliteDatabase)


class JSONField(TextField):
    """JSON as text: the same column type everywhere, readable in Datasette."""

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)

    def python_value(self, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        return json.loads(value)


class UUIDField(Field):
    """Native ``uuid`` on PostgreSQL; the canonical dashed text on SQLite (what analysts see)."""

    field_type = "UUID"

    def db_value(self, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, uuid.UUID):
            value = uuid.UUID(str(value))
        return str(value)

    def python_value(self, value: Any) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(str(value))
