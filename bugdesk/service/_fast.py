"""Statements compiled once per database kind, for the hot create path.

Building SQL through peewee's query objects costs more than SQLite takes to
run it; these helpers keep peewee's column metadata and value conversions but
build each statement text only once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peewee import Model

from bugdesk.db import database

_cache: dict[tuple, Any] = {}


def _db_kind() -> type:
    return type(database.obj)


def compiled(key: str, build: Callable[[], Any]) -> str:
    """The SQL text of the peewee query ``build()`` makes; its parameters are supplied per call."""
    cache_key = (key, _db_kind())
    sql = _cache.get(cache_key)
    if sql is None:
        sql = _cache[cache_key] = build().sql()[0]
    return sql


def insert_row(model: type[Model], values: dict[str, Any]) -> Any:
    """INSERT one row (field names as keys); returns the primary key."""
    meta = model._meta
    names = tuple(values)
    cache_key = ("insert", model, names, _db_kind())
    sql = _cache.get(cache_key)
    if sql is None:
        # Double quotes are the identifier quote of both SQLite and PostgreSQL.
        columns = ", ".join(f'"{meta.fields[n].column_name}"' for n in names)
        params = ", ".join([database.obj.param] * len(names))
        sql = _cache[cache_key] = (
            f'INSERT INTO "{meta.table_name}" ({columns}) VALUES ({params}) RETURNING "{meta.primary_key.column_name}"'
        )
    row = database.execute_sql(sql, [meta.fields[n].db_value(values[n]) for n in names]).fetchone()
    return row[0]


def portable(text: str) -> str:
    """Hand-written SQL with ``?`` placeholders, in the current backend's parameter style."""
    param = database.obj.param
    return text if param == "?" else text.replace("?", param)


def execute(text: str, params: list[Any]):
    """Run hand-written SQL written with ``?`` placeholders on either backend."""
    return database.execute_sql(portable(text), params)


def select_one(model: type[Model], key: str, build: Callable[[], Any], params: list[Any]) -> Any:
    """The first row of a compiled select as a model instance, or None.

    Not ``model.raw()``: that matches the cursor's columns to the model's fields again on every
    call, which cost more than the lookup itself (two lookups per create). The match is made once.
    """
    cursor = database.execute_sql(compiled(key, build), params)
    row = cursor.fetchone()
    if row is None:
        return None
    reader_key = ("reader", key, _db_kind())
    reader = _cache.get(reader_key)
    if reader is None:
        fields = model._meta.combined  # by field name and by column name
        reader = _cache[reader_key] = tuple((fields[d[0]].name, fields[d[0]].python_value) for d in cursor.description)
    instance = model(__no_default__=1)
    pairs = zip(reader, row, strict=True)
    instance.__data__ = {name: (convert(value) if value is not None else None) for (name, convert), value in pairs}
    return instance


def update_row(model: type[Model], pk: Any, values: dict[str, Any], *, version: int | None = None) -> int:
    """UPDATE one row by primary key (and version, when given); returns the number of rows changed."""
    meta = model._meta
    names = tuple(values)
    cache_key = ("update", model, names, version is not None, _db_kind())
    sql = _cache.get(cache_key)
    if sql is None:
        param = database.obj.param
        sets = ", ".join(f'"{meta.fields[n].column_name}" = {param}' for n in names)
        where = f'"{meta.primary_key.column_name}" = {param}'
        if version is not None:
            where += f' AND "version" = {param}'
        sql = _cache[cache_key] = f'UPDATE "{meta.table_name}" SET {sets} WHERE {where}'
    params = [meta.fields[n].db_value(values[n]) for n in names]
    params.append(meta.primary_key.db_value(pk))
    if version is not None:
        params.append(version)
    return database.execute_sql(sql, params).rowcount
