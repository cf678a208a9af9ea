"""Parse the timestamp shapes found in legacy bug-report stores into aware UTC datetimes.

Accepted shapes (all results are ``datetime`` objects in UTC):

* ISO 8601 with ``Z``, an offset, fractions of a second, a ``T`` or a space between date
  and time, or a bare date; naive values are taken as UTC;
* epoch numbers, as ``int``/``float`` or as a digit string; the unit (s, ms, µs, ns) is
  decided by magnitude, see :func:`from_epoch`;
* day-first ``DD/MM/YYYY HH:MM[:SS]`` (``.`` also accepted as separator), UTC; when the
  second field cannot be a month (> 12) the value is read month-first instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["TimestampError", "from_epoch", "parse_timestamp", "try_parse_timestamp"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Epoch values are told apart by magnitude: 1e11 seconds is the year 5138, while 1e11
# milliseconds is 1973, so each unit owns a band of three decades of magnitude that
# covers every plausible date (1973..5138) without overlapping the next unit.
_UNIT_BANDS = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6))
_NS_PER_S = 1e9

_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_DAY_FIRST = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?")


class TimestampError(ValueError):
    """A value that is no timestamp in any accepted shape."""


def from_epoch(value: float) -> datetime:
    """Turn an epoch number into a UTC datetime, choosing s/ms/µs/ns by magnitude."""
    magnitude = abs(value)
    divisor = _NS_PER_S
    for bound, unit in _UNIT_BANDS:
        if magnitude < bound:
            divisor = unit
            break
    try:
        # timedelta keeps integer milliseconds exact, where fromtimestamp would round floats
        if isinstance(value, int):
            seconds, rest = divmod(value, int(divisor))
            micros = rest * 1_000_000 // int(divisor)
            return _EPOCH + timedelta(seconds=seconds, microseconds=micros)
        return _EPOCH + timedelta(seconds=value / divisor)
    except OverflowError as exc:
        raise TimestampError(f"epoch value {value!r} is out of range") from exc


def _from_day_first(m: re.Match[str]) -> datetime:
    first, second, year = int(m[1]), int(m[2]), int(m[3])
    day, month = (second, first) if second > 12 >= first else (first, second)
    frac = m[7] or ""
    return datetime(
        year,
        month,
        day,
        int(m[4] or 0),
        int(m[5] or 0),
        int(m[6] or 0),
        int(frac.ljust(6, "0")) if frac else 0,
        tzinfo=UTC,
    )


def parse_timestamp(value: object) -> datetime:
    """Parse one legacy timestamp into an aware UTC datetime.

    Raises :class:`TimestampError` (a ``ValueError``) naming the value when it has no
    accepted shape.
    """
    if isinstance(value, bool) or value is None:
        raise TimestampError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float):
        return from_epoch(value)
    if not isinstance(value, str):
        raise TimestampError(f"not a timestamp: {type(value).__name__} {value!r}")
    text = value.strip()
    if not text:
        raise TimestampError("empty timestamp")
    if text.isascii() and text.isdigit():
        # Checked before ISO: fromisoformat would read an 8-digit epoch as YYYYMMDD.
        return from_epoch(int(text))
    iso = text[:-1] + "+00:00" if text[-1] in "Zz" else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        if _NUMBER.fullmatch(text):
            return from_epoch(float(text) if "." in text else int(text))
        m = _DAY_FIRST.fullmatch(text)
        if m is None:
            raise TimestampError(f"unrecognised timestamp {value!r}") from None
        try:
            return _from_day_first(m)
        except ValueError as exc:
            raise TimestampError(f"invalid date in {value!r}: {exc}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:
        raise TimestampError(f"timestamp {value!r} is out of range in UTC") from exc


def try_parse_timestamp(value: object) -> datetime | None:
    """Like :func:`parse_timestamp` but returns ``None`` instead of raising."""
    try:
        return parse_timestamp(value)
    except TimestampError:
        return None
