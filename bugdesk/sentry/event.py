"""A Sentry error event mapped to the fields of a bugdesk report. Pure: no I/O, no database.

The mapping is lenient about what an SDK fills: a field of the wrong shape is left out rather
than failing the whole event, because one odd tag should not lose an error report. Only an
event that cannot be a report at all (not an object, nothing to title it by) is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bugdesk import validate
from bugdesk.fingerprint.normalize import route_template
from bugdesk.fingerprint.traceback import is_library_path
from bugdesk.sentry.envelope import EnvelopeError

# Sentry levels -> bugdesk severities.
SEVERITY = {"fatal": "critical", "error": "high", "warning": "medium", "info": "low", "debug": "low"}

MAX_FRAMES = 100  # per exception; Sentry SDKs cut at 50-100 anyway
MAX_CHAIN = 10  # chained exceptions kept
TITLE_LEN = 200
_NAME_LEN = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_BUILTIN_MODULES = frozenset({"builtins", "__builtin__", "exceptions", "__main__"})

_CAUSE = "The above exception was the direct cause of the following exception:"
_CONTEXT = "During handling of the above exception, another exception occurred:"


def _name(value: Any, max_len: int = _NAME_LEN) -> str | None:
    """A one-line label (control characters folded to spaces, cut to ``max_len``), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = _CONTROL.sub(" ", str(value)).strip()
    return text[:max_len] or None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def event_id_of(event: dict[str, Any], envelope_headers: dict[str, Any] | None = None) -> str | None:
    """The event's id as 32 lower-case hex (Sentry's form, dashes dropped), or None when it has none.

    A present but malformed id is refused: it is the idempotency key, so guessing would store retries twice.
    """
    raw = event.get("event_id") or (envelope_headers or {}).get("event_id")
    if raw is None:
        return None
    text = str(raw).strip().lower().replace("-", "") if isinstance(raw, str) else ""
    if not _HEX32.match(text):
        raise EnvelopeError(f"event_id must be 32 hex characters, got {str(raw)[:60]!r}")
    return text


def _exceptions(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The exception chain, oldest cause first and the raised exception last (Sentry's order)."""
    raw = event.get("exception")
    values = raw.get("values") if isinstance(raw, dict) else raw  # very old SDKs sent the list itself
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, dict) and (_name(v.get("type")) or _text(v.get("value")))][-MAX_CHAIN:]


def _qualified_type(exc: dict[str, Any]) -> str | None:
    """``myapp.errors.PaymentError`` as Python prints it; builtins stay bare (``KeyError``)."""
    kind = _name(exc.get("type"))
    module = _name(exc.get("module"))
    if kind and module and module not in _BUILTIN_MODULES and "." not in kind:
        return f"{module}.{kind}"
    return kind


def _frames(stacktrace: Any) -> list[dict[str, Any]]:
    """Frames in the shape `bugdesk.fingerprint.frames_from_list` reads, outermost first, in_app always set."""
    raw = _dict(stacktrace).get("frames")
    if not isinstance(raw, list):
        return []
    frames = []
    for item in raw[-MAX_FRAMES:]:  # the innermost frames locate the bug; drop from the outer end
        if not isinstance(item, dict):
            continue
        frame = {
            "filename": _name(item.get("filename"), 1024),
            "abs_path": _name(item.get("abs_path"), 1024),
            "module": _name(item.get("module")),
            "function": _name(item.get("function")),
            "lineno": item.get("lineno") if isinstance(item.get("lineno"), int) else None,
            "context_line": _name(item.get("context_line"), 400),
        }
        if not (frame["filename"] or frame["abs_path"] or frame["module"] or frame["function"]):
            continue
        in_app = item.get("in_app")
        if not isinstance(in_app, bool):
            # The SDK sets in_app only with in_app_include/exclude: decide as the fingerprint would.
            in_app = not is_library_path(frame["abs_path"] or frame["filename"] or frame["module"])
        frame["in_app"] = in_app
        frames.append({k: v for k, v in frame.items() if v is not None})
    return frames


def _traceback_block(exc: dict[str, Any], frames: list[dict[str, Any]]) -> str:
    lines = []
    if frames:
        lines.append("Traceback (most recent call last):")
        for f in frames:
            where = f.get("abs_path") or f.get("filename") or f.get("module") or "<unknown>"
            line = f"line {f['lineno']}" if "lineno" in f else "line ?"
            lines.append(f'  File "{where}", {line}, in {f.get("function") or "<unknown>"}')
            if f.get("context_line"):
                lines.append(f"    {f['context_line'].strip()}")
    kind = _qualified_type(exc) or "Error"
    value = _text(exc.get("value"))
    lines.append(f"{kind}: {value}" if value else kind)
    return "\n".join(lines)


def render_traceback(chain: list[dict[str, Any]], frames_of: list[list[dict[str, Any]]]) -> str:
    """The chain as Python prints it: causes first, joined by the "direct cause" / "during handling" lines."""
    blocks = []
    for i, (exc, frames) in enumerate(zip(chain, frames_of, strict=True)):
        if i:
            source = _dict(exc.get("mechanism")).get("source")
            blocks.append(_CAUSE if source == "__cause__" else _CONTEXT)
        blocks.append(_traceback_block(exc, frames))
    return "\n\n".join(blocks)


def _message(event: dict[str, Any]) -> str | None:
    """A log-message event's text: ``logentry.formatted``, then ``logentry.message``, then ``message``."""
    for key in ("logentry", "message"):
        value = event.get(key)
        # The formatted text is what a human reads; the template ("disk %s full") when the SDK sent no other.
        text = _text(value.get("formatted")) or _text(value.get("message")) if isinstance(value, dict) else _text(value)
        if text:
            return text
    return None


def _timestamp(value: Any, now: datetime) -> datetime | None:
    """The event's time (epoch seconds or ISO 8601), never later than ``now`` (clients' clocks drift)."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            at = datetime.fromtimestamp(float(value), UTC)
        elif isinstance(value, str):
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    if at.year < 1970:  # the store sorts timestamps as fixed-width text from 1970 on; such a clock is simply wrong
        return None
    return min(at, now)


def _request(event: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(url, method, request id) of the event's request, if any."""
    request = _dict(event.get("request"))
    url = _name(request.get("url"), 2048) if isinstance(request.get("url"), str) else None
    method = _name(request.get("method"), 16)
    request_id = None
    headers = request.get("headers")
    pairs = headers.items() if isinstance(headers, dict) else headers if isinstance(headers, list) else []
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) == 2 and str(pair[0]).lower() in ("x-request-id",):
            candidate = _name(pair[1], 128)
            if candidate and " " not in candidate:
                request_id = candidate
    return url, method.upper() if method else None, request_id


def _tags(event: dict[str, Any]) -> dict[str, str]:
    """Tags as a flat dict: SDKs send an object or a list of [key, value] pairs."""
    raw = event.get("tags")
    pairs = raw.items() if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    tags = {}
    for pair in pairs:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            key, value = _name(pair[0], 64), _name(pair[1], 200)
            if key and value:
                tags[key] = value
        if len(tags) >= 50:
            break
    return tags


def _trace_id(event: dict[str, Any]) -> str | None:
    trace_id = _name(_dict(_dict(event.get("contexts")).get("trace")).get("trace_id"), 64)
    if trace_id:
        trace_id = trace_id.lower().replace("-", "")
        if _HEX32.match(trace_id) and trace_id.strip("0"):
            return trace_id
    return None


def _reporter(event: dict[str, Any]) -> str | None:
    user = _dict(event.get("user"))
    # The stable identifiers only: an IP address is not a reporter.
    return _name(user.get("id")) or _name(user.get("username")) or _name(user.get("email"))


def report_from_event(
    event: dict[str, Any], *, event_id: str | None = None, project: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The report data (`bugdesk.service.create_report`'s input) for a Sentry error or message event."""
    if not isinstance(event, dict):
        raise EnvelopeError(f"the event must be a JSON object, got {type(event).__name__}")
    now = now or datetime.now(UTC)
    chain = _exceptions(event)
    frames_of = [_frames(exc.get("stacktrace")) for exc in chain]
    message = _message(event)
    details: dict[str, Any] = {"sentry": {"event_id": event_id, "project": project}}
    data: dict[str, Any] = {"source": "system", "category": "error", "details": details}

    if chain:
        top = chain[-1]
        kind = _qualified_type(top) or "Error"
        value = _text(top.get("value"))
        first_line = value.strip().splitlines()[0] if value and value.strip() else ""
        data["title"] = f"{kind}: {first_line}"[:TITLE_LEN] if first_line else kind
        data["exception_type"] = kind
        data["stacktrace"] = render_traceback(chain, frames_of)
        details["exception_message"] = value
        details["frames"] = frames_of[-1] or next((f for f in reversed(frames_of) if f), [])
        if len(chain) > 1:
            details["chain"] = [
                {"type": _qualified_type(exc), "value": _text(exc.get("value")), "frames": len(frames)}
                for exc, frames in zip(chain, frames_of, strict=True)
            ]
        handled = _dict(top.get("mechanism")).get("handled")
        if isinstance(handled, bool):
            details["handled"] = handled
        if message:
            data["description"] = message
    elif message:
        data["title"] = (message.strip().splitlines()[0])[:TITLE_LEN]
        data["description"] = message
        data["category"] = "log"
        details["exception_message"] = message
        # attach_stacktrace=True puts the stack on the event (or its first thread) instead of an exception.
        stack = event.get("stacktrace") or next(
            (t.get("stacktrace") for t in _dict(event.get("threads")).get("values") or [] if isinstance(t, dict)),
            None,
        )
        frames = _frames(stack)
        if frames:
            details["frames"] = frames
    else:
        raise EnvelopeError("the event has neither an exception nor a message: nothing to report")

    level = _name(event.get("level"))
    data["severity"] = SEVERITY.get(level.lower() if level else "error", "high")
    release = _name(event.get("release"))
    if release:
        data["release"] = release  # a hex sha becomes release_sha, anything else details.release
    environment = _name(event.get("environment"), 64)
    if environment:
        data["environment"] = environment
    trace_id = _trace_id(event)
    if trace_id:
        data["trace_id"] = trace_id
    url, method, request_id = _request(event)
    if url:
        # Without the query string: it can carry tokens, and details are served to analysts.
        details["url"] = url.split("?", 1)[0].split("#", 1)[0]
        template = route_template(url)
        if template:
            data["route"] = f"{method} {template}" if method else template
    if request_id:
        data["request_id"] = request_id
    if method:
        details["method"] = method
    transaction = _name(event.get("transaction"), 512)
    if transaction:
        details["transaction"] = transaction
    tags = _tags(event)
    if tags:
        details["tags"] = tags
        if tags.get("component"):
            data["component"] = tags["component"]
    reporter = _reporter(event)
    if reporter:
        data["reporter_id"] = reporter
    for key in ("platform", "logger", "server_name"):
        value = _name(event.get(key))
        if value:
            details[key] = value
    sdk = _dict(event.get("sdk"))
    if _name(sdk.get("name")):
        details["sdk"] = f"{_name(sdk.get('name'))}/{_name(sdk.get('version')) or '?'}"
    # NUL and lone surrogates (legal in JSON text) can be neither stored by every backend nor sent back as UTF-8.
    data = validate.clean_json(data, "event")
    created_at = _timestamp(event.get("timestamp"), now)
    if created_at:
        data["created_at"] = created_at
    return data
