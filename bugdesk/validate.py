"""Input checks shared by every write: each failure names the field and says what is allowed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bugdesk.errors import ValidationError
from bugdesk.lifecycle import SEVERITIES, SOURCES

_HEX = re.compile(r"^[0-9a-f]+$")
_TOKENISH = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # one regex scan instead of a Python loop per character

TITLE_MAX = 500
TEXT_MAX = 8 * 1024 * 1024  # a pasted log can be a few MiB; the API caps request bodies anyway
SHORT_MAX = 255


def clean_text(value: Any, field: str, *, max_len: int = TEXT_MAX, required: bool = False) -> str | None:
    """Free text: NUL and lone surrogates cannot be stored by every backend, so they are replaced."""
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string, got {type(value).__name__}", field=field)
    text = value.replace("\x00", "\ufffd") if "\x00" in value else value
    if not text.isascii():  # only non-ASCII text can hold a lone surrogate
        text = text.encode("utf-8", "replace").decode("utf-8")
    if required and not text.strip():
        raise ValidationError(f"{field} must not be blank", field=field)
    if len(text) > max_len:
        raise ValidationError(f"{field} is {len(text)} characters long; the limit is {max_len}", field=field)
    return text


def clean_name(value: Any, field: str, *, max_len: int = SHORT_MAX) -> str | None:
    """Identifiers and labels (component, reporter, environment...): one line, no control characters."""
    if value is None:
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValidationError(f"{field} must be a string, got {type(value).__name__}", field=field)
    text = str(value).strip()
    if not text:
        return None
    if len(text) > max_len:
        raise ValidationError(f"{field} is longer than {max_len} characters", field=field)
    if _CONTROL.search(text):
        raise ValidationError(f"{field} must not contain control characters or line breaks", field=field)
    return text


def choice(value: Any, field: str, allowed: Iterable[str], *, default: str | None = None) -> str:
    allowed = tuple(allowed)
    if value is None or value == "":
        if default is None:
            raise ValidationError(f"{field} is required; one of: {', '.join(allowed)}", field=field)
        return default
    text = str(value).strip().lower()
    if text not in allowed:
        raise ValidationError(
            f"{field} {str(value)[:40]!r} is not allowed; use one of: {', '.join(allowed)}",
            field=field,
            allowed=list(allowed),
        )
    return text


def severity(value: Any, *, default: str | None = "medium") -> str:
    return choice(value, "severity", SEVERITIES, default=default)


def source(value: Any) -> str:
    return choice(value, "source", SOURCES, default="user")


def hex_id(value: Any, field: str, *, lengths: tuple[int, ...]) -> str | None:
    """Trace ids and similar: lower-case hex of one of ``lengths``, never all zeros."""
    if value is None or value == "":
        return None
    text = str(value).strip().lower().replace("-", "")
    if len(text) not in lengths or not _HEX.match(text):
        raise ValidationError(
            f"{field} must be {' or '.join(map(str, lengths))} hex characters, got {str(value)[:80]!r}",
            field=field,
        )
    if not text.strip("0"):
        raise ValidationError(f"{field} must not be all zeros", field=field)
    return text


def commit_sha(value: Any, field: str = "commit") -> str:
    text = str(value).strip().lower() if value is not None else ""
    if not (7 <= len(text) <= 64) or not _HEX.match(text):
        raise ValidationError(f"{field} {str(value)[:80]!r} is not a commit SHA (7 to 64 hex characters)", field=field)
    return text


def commits(values: Any, field: str = "commits") -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise ValidationError(f"{field} must be a list of commit SHAs", field=field)
    if len(values) > 100:
        raise ValidationError(f"{field} holds at most 100 commit SHAs", field=field)
    return [commit_sha(v, field) for v in values]


def request_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    if len(text) > 128 or not _TOKENISH.match(text):
        raise ValidationError("request_id must be at most 128 printable characters without spaces", field="request_id")
    return text


JSON_MAX_DEPTH = 32  # Sentry's own normaliser stops at 10 levels; deeper than this is an attack, not context


def _clean_string(text: str) -> str:
    if text.isascii():  # the common case: no surrogate possible, NUL found by a memchr
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no backend stores it and no JSON encoder writes it as UTF-8
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def clean_json(value: Any, field: str, *, max_depth: int = JSON_MAX_DEPTH) -> Any:
    """A free-form JSON value (``details``, event ``data``) that every backend can store and every answer render.

    NUL and lone surrogates in strings and keys are replaced, like free text. Refused, naming ``field``:
    nesting deeper than ``max_depth`` (a JSON encoder recurses once per level) and numbers JSON cannot
    express (NaN, infinities: Python's parser reads them, PostgreSQL and strict encoders do not).
    """

    def walk(item: Any, depth: int) -> Any:
        if isinstance(item, str):
            return _clean_string(item)
        if isinstance(item, bool) or item is None or isinstance(item, int):
            return item
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise ValidationError(f"{field} holds a number JSON cannot express ({item})", field=field)
            return item
        if depth >= max_depth:
            raise ValidationError(f"{field} is nested deeper than {max_depth} levels", field=field)
        if isinstance(item, dict):
            return {_clean_string(str(k)): walk(v, depth + 1) for k, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v, depth + 1) for v in item]
        raise ValidationError(f"{field} holds a {type(item).__name__}, which is not JSON", field=field)

    return walk(value, 0)


def filter_text(value: str | None, field: str) -> str | None:
    """A text filter: NUL is refused (PostgreSQL cannot compare it, SQLite's FTS reads it as the end of the query)."""
    if value is not None and "\x00" in value:
        raise ValidationError(f"{field} must not contain NUL characters", field=field)
    return value
