"""Hypothesis strategies and the check of one fuzzed request, shared by test_fuzz_endpoints.py and the campaign.

Strategies produce arbitrary JSON values, valid bodies with one field replaced by an arbitrary value (so the fuzz
reaches past "not an object"), header values of every byte HTTP allows, and Sentry bodies (raw bytes, gzip,
framed envelopes around arbitrary events).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from typing import Any

from hostile import Answer, Endpoint, Target, database_snapshot, fill
from hypothesis import strategies as st

# Cases tried and what came back, per endpoint, for the summary the issue quotes ("fuzz cases tried").
TALLY: Counter[str] = Counter()
SERVER_ERRORS: list[str] = []

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats()  # NaN and infinities too: json.dumps writes them, Python parsers read them
    | st.text()
    | st.sampled_from(["", "\x00", "\ud800", "' OR 1=1 --", "../../etc/passwd", "1e400", "abcdef1", "high", "#1"])
)
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=25,
)


def json_bytes(value: Any) -> bytes:
    # ensure_ascii keeps lone surrogates encodable; the server sees them as \\ud800 escapes, as a client would send.
    return json.dumps(value).encode()


def bodies(endpoint: Endpoint) -> st.SearchStrategy[bytes]:
    """Arbitrary JSON, or the endpoint's valid body with one field replaced, removed or added."""
    base = endpoint.body or {}
    strategies = [json_values.map(json_bytes)]
    if base:
        keys = st.sampled_from(sorted(base))
        strategies += [
            st.tuples(keys, json_values).map(lambda kv: json_bytes({**base, kv[0]: kv[1]})),
            keys.map(lambda k: json_bytes({key: v for key, v in base.items() if key != k})),
            st.tuples(st.text(max_size=20), json_values).map(lambda kv: json_bytes({**base, kv[0]: kv[1]})),
            st.binary(max_size=64).map(lambda junk: json_bytes(base)[:-1] + junk),
        ]
    return st.one_of(strategies)


# What h11 (the client) lets through in a header value: visible ASCII, obs-text, and inner spaces and tabs.
_header_bytes = st.binary(max_size=80).map(
    lambda raw: bytes(b for b in raw if b in (9, 32) or 0x21 <= b <= 0x7E or b >= 0x80).strip(b" \t")
)
HEADER_NAMES = ("Idempotency-Key", "X-Request-ID", "X-Correlation-ID", "traceparent", "If-Match", "Content-Type",
                "Content-Encoding", "X-Sentry-Auth", "Accept", "Authorization")  # fmt: skip
header_sets = st.dictionaries(
    st.sampled_from(HEADER_NAMES),
    _header_bytes | st.sampled_from([b'"1"', b"*", b'W/"2"', b"application/json", b"gzip", b"\xb2"]),
    max_size=4,
)


def _envelope(event: bytes, header: bytes = b"{}") -> bytes:
    return header + b"\n" + json.dumps({"type": "event", "length": len(event)}).encode() + b"\n" + event + b"\n"


def _event(value: Any) -> dict[str, Any]:
    base = {"level": "error", "exception": {"values": [{"type": "ValueError", "value": "bad"}]}}
    return {**base, **value} if isinstance(value, dict) else {**base, "extra": value}


sentry_bodies = st.one_of(
    st.binary(max_size=2048),
    st.binary(max_size=2048).map(gzip.compress),
    json_values.map(lambda v: _envelope(json_bytes(_event(v)))),
    json_values.map(lambda v: gzip.compress(_envelope(json_bytes(_event(v))))),
    st.tuples(json_values, json_values).map(lambda p: _envelope(json_bytes(p[1]), json_bytes(p[0]))),
    st.dictionaries(st.sampled_from(["exception", "message", "tags", "request", "timestamp", "user", "contexts",
                                     "event_id", "release", "level", "logentry", "transaction"]),
                    json_values, max_size=6).map(lambda ev: _envelope(json_bytes(ev))),
)  # fmt: skip

FILTER_NAMES = ("status", "severity", "category", "component", "assignee_id", "assigned_to", "claimed_by",
                "needs_human", "sla_breached", "trace_id", "request_id", "release_sha", "fingerprint",
                "created_after", "created_before", "include_duplicates", "duplicates_of", "q", "sort", "limit",
                "cursor")  # fmt: skip
query_params = st.lists(
    st.tuples(st.sampled_from(FILTER_NAMES) | st.text(max_size=10), st.text(max_size=60)), max_size=6
)


def check(target: Target, name: str, method: str, path: str, ids: dict[str, str], **kwargs: Any) -> Answer:
    """Send one fuzzed request; fail on a 5xx, a 4xx without a problem detail, or a refusal that changed the data."""
    before = database_snapshot()
    answer = Answer.of(target.admin.request(method, fill(path, ids), **kwargs))
    TALLY[name] += 1
    if answer.status >= 500:
        SERVER_ERRORS.append(f"{name}: {answer.status} {answer.body[:200]!r}")
        raise AssertionError(f"{method} {path} answered {answer.status}: {answer.body[:500]!r}")
    if answer.status >= 400:
        assert answer.headers.get("content-type", "").startswith("application/problem+json"), answer.headers
        assert answer.json().get("detail"), answer.body
        assert database_snapshot() == before, f"a refused {method} {path} changed the database"
    return answer
