"""Telemetry correlation from HTTP headers: W3C ``traceparent``, request ids, and filling a submission with them.

Pure functions only (no I/O, no framework imports), shared by the API middleware and the ingest paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# version "-" trace-id "-" parent-id "-" trace-flags, all lower-case hex (W3C Trace Context, level 1).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces: safe in logs and headers

REQUEST_ID_HEADERS = ("x-request-id", "x-correlation-id")


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of a valid ``traceparent`` header, else None.

    Invalid per the spec: upper-case hex, all-zero trace or span id, version ``ff``,
    and extra fields on version ``00`` (later versions may append fields).
    """
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header mappings are not.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def request_id_from(headers: Mapping[str, str]) -> str | None:
    """The caller's request id (``X-Request-ID``, then ``X-Correlation-ID``) when it is printable and ≤ 128 chars."""
    for name in REQUEST_ID_HEADERS:
        value = _header(headers, name)
        if value is not None and _PRINTABLE.match(value.strip()):
            return value.strip()
    return None


def fill_submission(data: dict[str, Any], headers: Mapping[str, str], release: str | None = None) -> dict[str, Any]:
    """``data`` with ``trace_id``, ``request_id`` and ``release_sha`` filled from the headers and the server release.

    Explicit payload values always win; a new dict is returned only when something was filled.
    """
    filled: dict[str, Any] = {}
    if not data.get("trace_id"):
        parsed = parse_traceparent(_header(headers, "traceparent"))
        if parsed is not None:
            filled["trace_id"] = parsed[0]
    if not data.get("request_id"):
        request_id = request_id_from(headers)
        if request_id is not None:
            filled["request_id"] = request_id
    if release and not (data.get("release_sha") or data.get("release")):
        filled["release_sha"] = release
    return {**data, **filled} if filled else data
