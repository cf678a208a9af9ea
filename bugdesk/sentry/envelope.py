"""Sentry envelopes and request bodies: decompression and parsing, with size limits. Pure functions, no I/O.

An envelope (https://develop.sentry.dev/sdk/data-model/envelopes/) is a JSON header line, then
items: a JSON item-header line and a payload. With a ``length`` in its header the payload is
exactly that many bytes (it may contain newlines; a newline after it is optional); without one it
runs to the next newline or the end. Everything malformed raises `EnvelopeError` (HTTP 400) with
a message naming what and where; anything over a limit raises `TooLarge` (HTTP 413).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

from bugdesk.errors import ValidationError

try:  # brotli is a dependency; the guard keeps the parser importable in a stripped-down install.
    import brotli
except ImportError:  # pragma: no cover
    brotli = None

# Relay's defaults are larger (envelopes 100 MiB, events 1 MiB); bugdesk stores errors, not attachments,
# and the API's raw body limit (api_body_limit_bytes) caps what arrives compressed.
MAX_ENVELOPE_BYTES = 8 * 1024 * 1024  # decompressed
MAX_EVENT_BYTES = 1024 * 1024  # one event item's JSON payload
MAX_ITEMS = 100
MAX_HEADER_BYTES = 16 * 1024  # one header line; real ones are under 1 KiB

_CHUNK = 64 * 1024


class EnvelopeError(ValidationError):
    """A malformed body: answered 400 with the message (the SDK drops the event and does not retry)."""

    title = "malformed envelope"
    http_status = 400


class TooLarge(EnvelopeError):
    """A body, envelope or event over its limit: answered 413."""

    title = "payload too large"
    http_status = 413


@dataclass(frozen=True, slots=True)
class Item:
    """One envelope item: its header (``type``, ``length``, ``content_type``, ...) and raw payload."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        kind = self.headers.get("type")
        return kind if isinstance(kind, str) else ""

    def json(self) -> Any:
        """The payload as JSON; EnvelopeError when it is not."""
        return parse_json(self.payload, f"the {self.type or 'untyped'} item")


@dataclass(frozen=True, slots=True)
class Envelope:
    headers: dict[str, Any]
    items: list[Item] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Limits:
    """The size limits of one request, in bytes (after decompression)."""

    envelope: int = MAX_ENVELOPE_BYTES
    event: int = MAX_EVENT_BYTES
    items: int = MAX_ITEMS


DEFAULT_LIMITS = Limits()

# Item types that carry an error event; everything else (transaction, session(s), client_report,
# attachment, check_in, profile, replay_*, statsd, span, log, user_report...) is accepted and ignored.
EVENT_TYPES = frozenset({"event"})


def decode_body(body: bytes, content_encoding: str | None, *, limit: int = MAX_ENVELOPE_BYTES) -> bytes:
    """``body`` decoded per ``Content-Encoding`` (gzip, deflate, br, identity; stacked ones right to left).

    The output is capped at ``limit`` while decompressing, so a small compression bomb costs
    ``limit`` bytes of memory at most before it is refused with `TooLarge`.
    """
    encodings = [e.strip().lower() for e in (content_encoding or "").split(",") if e.strip()]
    for encoding in reversed(encodings):
        if encoding in ("identity", ""):
            continue
        if encoding in ("gzip", "x-gzip"):
            body = _zlib(body, zlib.MAX_WBITS | 16, "gzip", limit)
        elif encoding == "deflate":
            # HTTP "deflate" is zlib-wrapped, but some clients send raw deflate: accept both.
            try:
                body = _zlib(body, zlib.MAX_WBITS, "deflate", limit)
            except TooLarge:
                raise
            except EnvelopeError:
                body = _zlib(body, -zlib.MAX_WBITS, "deflate", limit)
        elif encoding == "br":
            body = _brotli(body, limit)
        else:
            raise EnvelopeError(f"unsupported Content-Encoding {encoding[:40]!r}; send gzip, deflate, br or none")
    if len(body) > limit:
        raise TooLarge(f"the body is {len(body)} bytes; the limit is {limit}")
    return body


def _zlib(data: bytes, wbits: int, name: str, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, limit + 1)
        if len(out) > limit:
            raise TooLarge(f"the {name} body decompresses to more than {limit} bytes")
        if not decoder.eof:
            raise EnvelopeError(f"the {name} body is truncated: the compressed stream does not end")
    except zlib.error as exc:
        raise EnvelopeError(f"the body is not valid {name} data: {exc}") from None
    return out


def _brotli(data: bytes, limit: int) -> bytes:
    if brotli is None:  # pragma: no cover
        raise EnvelopeError("Content-Encoding br is not supported by this server (the brotli package is missing)")
    decoder = brotli.Decompressor()
    parts: list[bytes] = []
    size = 0
    try:
        chunk = decoder.process(data, output_buffer_limit=_CHUNK)
        # Drain the output a chunk at a time; a call that yields nothing means the decoder wants input
        # that will never come, i.e. the stream is cut short.
        while chunk or decoder.is_finished():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the br body decompresses to more than {limit} bytes")
            parts.append(chunk)
            if decoder.is_finished():
                return b"".join(parts)
            chunk = decoder.process(b"", output_buffer_limit=_CHUNK)
    except brotli.error as exc:
        raise EnvelopeError(f"the body is not valid br data: {exc}") from None
    raise EnvelopeError("the br body is truncated: the compressed stream does not end")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def parse_json(data: bytes, what: str) -> Any:
    """``data`` as strict JSON (UTF-8, no NaN or infinities, which nothing downstream could store or send back);
    EnvelopeError naming ``what`` otherwise."""
    try:
        return json.loads(data, parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise EnvelopeError(f"{what} is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise EnvelopeError(f"{what} is not valid JSON: {str(exc)[:200]}") from None


def _header_line(data: bytes, start: int, what: str) -> tuple[dict[str, Any], int]:
    """The JSON object on the line starting at ``start``, and the offset after its newline."""
    end = data.find(b"\n", start)
    stop = len(data) if end == -1 else end
    if stop - start > MAX_HEADER_BYTES:
        raise EnvelopeError(f"{what} is longer than {MAX_HEADER_BYTES} bytes; is this an envelope?")
    line = data[start:stop].rstrip(b"\r")
    value = parse_json(line, what) if line.strip() else {}
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value, stop + 1


def parse_envelope(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Envelope:
    """Split a decoded envelope into its header and items; sizes checked against ``limits``."""
    if len(data) > limits.envelope:
        raise TooLarge(f"the envelope is {len(data)} bytes; the limit is {limits.envelope}")
    if not data.strip():
        raise EnvelopeError("the envelope is empty: it needs at least a header line")
    headers, pos = _header_line(data, 0, "the envelope header")
    items: list[Item] = []
    while pos < len(data):
        if data[pos : pos + 1] in (b"\n", b"\r"):  # blank lines between items (and a trailing one)
            pos += 1
            continue
        number = len(items) + 1
        if number > limits.items:
            raise EnvelopeError(f"the envelope holds more than {limits.items} items")
        item_headers, pos = _header_line(data, pos, f"the header of item {number}")
        if not isinstance(item_headers.get("type"), str) or not item_headers["type"]:
            raise EnvelopeError(f"item {number} has no type in its header")
        length = item_headers.get("length")
        if length is None:
            end = data.find(b"\n", pos)
            stop = len(data) if end == -1 else end
            payload, pos = data[pos:stop], stop + 1
        else:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise EnvelopeError(f"item {number} has an invalid length {str(length)[:40]!r}")
            if pos + length > len(data):
                raise EnvelopeError(f"item {number} declares {length} bytes but only {max(len(data) - pos, 0)} follow")
            payload, pos = data[pos : pos + length], pos + length
            if data[pos : pos + 1] == b"\n":
                pos += 1
            elif pos < len(data) and data[pos : pos + 2] != b"\r\n":
                raise EnvelopeError(f"item {number}: its {length}-byte payload is not followed by a newline")
        if item_headers["type"] in EVENT_TYPES and len(payload) > limits.event:
            raise TooLarge(f"the event is {len(payload)} bytes; the limit is {limits.event}")
        items.append(Item(item_headers, payload))
    return Envelope(headers, items)


def parse_store_body(data: bytes, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The event of a ``/store/`` request: JSON, or (very old SDKs) base64 of zlib-compressed JSON."""
    if len(data) > limits.event:
        raise TooLarge(f"the event is {len(data)} bytes; the limit is {limits.event}")
    text = data.lstrip()
    if text[:1] not in (b"{", b"["):
        try:
            text = _zlib(base64.b64decode(text, validate=True), zlib.MAX_WBITS, "deflate", limits.event)
        except (binascii.Error, ValueError):
            raise EnvelopeError("the store body is neither JSON nor base64-encoded deflated JSON") from None
    event = parse_json(text, "the event")
    if not isinstance(event, dict):
        raise EnvelopeError(f"the event must be a JSON object, got {type(event).__name__}")
    return event
