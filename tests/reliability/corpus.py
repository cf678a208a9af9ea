"""The hostile-input corpus: named nasty requests against every write endpoint, every list filter, ids in paths,
headers and the Sentry ingest, each with what an honest server answers. Used by the tests and the campaign script.

Expectations:

- ``refused``: a 4xx ``application/problem+json`` with a ``detail``; the database is unchanged.
- ``empty``: a 200 listing with no rows (SQL metacharacters in a text filter are just text); nothing changed.
- ``stored``: a 2xx, and everything stored still renders (listing and the report read back).
- ``honest``: either ``refused`` or ``stored``, whichever the server chose (e.g. NUL in free text is replaced).
- ``protocol``: refused by the HTTP layer (uvicorn's own 4xx) or by the app as a problem; nothing changed.
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

import brotli
from hostile import Endpoint, valid_endpoints

MB = 1024 * 1024
DEEP = 100_000
FREE_TEXT = {"title", "description", "stacktrace", "note", "notes", "reason", "body", "log"}
JSON_OBJECTS = {"details", "data"}


@dataclass(frozen=True)
class Case:
    id: str
    expect: str
    method: str = "GET"
    path: str = "/api/bug-reports"
    json: Any = None
    content: bytes | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    params: Any = None
    raw: bytes | None = None  # a whole request head sent over a socket as is; {auth} and {ref} are filled
    sentry: bool = False  # authenticate with the ingest key instead of the admin token


def _first_string_field(body: dict[str, Any]) -> str:
    return next((k for k, v in body.items() if isinstance(v, str)), next(iter(body)))


def _with_marker(body: dict[str, Any], key: str, marker: bytes) -> bytes:
    """``body`` as JSON bytes with ``key``'s value replaced by raw ``marker`` bytes (not valid JSON text)."""
    text = json.dumps({**body, key: "@@MARK@@"}).encode()
    return text.replace(b'"@@MARK@@"', marker)


def _nested(depth: int, leaf: str = "1") -> bytes:
    return (b'{"a":' * depth) + leaf.encode() + (b"}" * depth)


def body_cases(endpoint: Endpoint) -> list[Case]:
    """Bodies no endpoint should choke on, and each field of the valid body replaced by something hostile."""
    e = endpoint
    base = e.body or {}
    if not base:
        return []
    first = _first_string_field(base)
    json_headers = {**e.headers, "Content-Type": "application/json"}

    def case(suffix: str, expect: str, **kwargs: Any) -> Case:
        kwargs.setdefault("headers", json_headers)
        return Case(f"{e.name}-{suffix}", expect, e.method, e.path, **kwargs)

    cases = [
        case("nested-100k-arrays", "refused", content=b"[" * DEEP + b"]" * DEEP),
        case("nested-100k-objects", "refused", content=_nested(DEEP)),
        case(f"nested-100k-in-{first}", "refused", content=_with_marker(base, first, b"[" * DEEP + b"]" * DEEP)),
        case("10mb-string", "refused", json={**base, first: "x" * (10 * MB)}),
        case("invalid-utf8", "refused", content=_with_marker(base, first, b'"\xc3\x28\xff\xfe"')),
        case("raw-nul-in-string", "refused", content=_with_marker(base, first, b'"a\x00b"')),
        case("nan-literal", "refused", content=_with_marker(base, first, b"NaN")),
        case("json-array", "refused", content=b"[1, 2, 3]"),
        case("truncated-json", "refused", content=json.dumps(base).encode()[:-3]),
        case("text-plain", "refused", content=json.dumps(base).encode(),
             headers={**e.headers, "Content-Type": "text/plain"}),
        case("gzip-body-on-json-api", "refused", content=gzip.compress(json.dumps(base).encode()),
             headers={**json_headers, "Content-Encoding": "gzip"}),
        case("unknown-field-sql", "refused", json={**base, "id' OR '1'='1": 1}),
    ]  # fmt: skip
    for key, value in base.items():
        if key in JSON_OBJECTS:
            cases += [
                case(f"{key}-nested-900", "honest", content=_with_marker(base, key, _nested(900))),
                case(f"{key}-huge-int", "honest", json={**base, key: {"n": 2**200}}),
                case(f"{key}-1e400", "refused", content=_with_marker(base, key, b'{"n": 1e400}')),
                case(f"{key}-nan", "refused", content=_with_marker(base, key, b'{"n": NaN}')),
                case(f"{key}-nul-key-and-value", "honest", json={**base, key: {"a\x00": "b\x00c"}}),
                case(f"{key}-lone-surrogate", "honest", content=_with_marker(base, key, b'{"\\udc80": "\\ud800"}')),
                case(f"{key}-not-an-object", "refused", json={**base, key: [1, 2]}),
            ]
            continue
        if not isinstance(value, str):
            cases += [
                case(f"{key}-huge-int", "refused", json={**base, key: 2**200}),
                case(f"{key}-1e400", "refused", content=_with_marker(base, key, b"1e400")),
            ]
        elif key == first:
            cases.append(case(f"{key}-huge-int", "refused", json={**base, key: -(2**200)}))
        if isinstance(value, str) and not value.startswith("{"):
            text_expect = "honest" if key in FREE_TEXT else "refused"
            cases += [
                case(f"{key}-nul-escaped", text_expect, json={**base, key: "a\x00b"}),
                case(f"{key}-lone-surrogate", text_expect, content=_with_marker(base, key, b'"a\\ud800b"')),
                case(f"{key}-crlf", text_expect, json={**base, key: "a\r\nSet-Cookie: x=1"}),
                case(f"{key}-sql", "honest", json={**base, key: "x'); DROP TABLE bug_reports; --"}),
            ]
        if isinstance(value, list):
            cases.append(case(f"{key}-100k-items", "refused", json={**base, key: ["abcdef1"] * 100_000}))
    return cases


def _stack(frames: int) -> str:
    lines = ["Traceback (most recent call last):"]
    lines += [f'  File "/srv/app/m{i % 97}.py", line {i}, in f{i % 89}' for i in range(frames)]
    lines.append("KeyError: 'x'")
    return "\n".join(lines)


def stack_cases() -> list[Case]:
    """100k-frame traces: over the body limit as text, and as structured frames; under it they must still work."""
    title = {"title": "deep recursion in hostile stack"}
    small_frames = [{"filename": f"app/m{i % 97}.py", "function": f"f{i % 89}", "in_app": True} for i in range(100_000)]
    return [
        Case("stacktrace-100k-frames", "refused", "POST", "/api/bug-reports",
             json={**title, "stacktrace": _stack(100_000)}),
        Case("stacktrace-20k-frames-under-the-limit", "stored", "POST", "/api/bug-reports",
             json={**title, "stacktrace": _stack(20_000)[: MB * 3 // 4]}),
        Case("details-frames-100k", "refused", "POST", "/api/bug-reports",
             json={**title, "details": {"frames": small_frames}}),
        Case("details-frames-10k-under-the-limit", "stored", "POST", "/api/bug-reports",
             json={**title, "details": {"frames": small_frames[:10_000]}}),
        Case("description-100k-line-traceback", "stored", "POST", "/api/bug-reports",
             json={**title, "description": _stack(30_000)[: MB * 3 // 4]}),
    ]  # fmt: skip


INJECTIONS = {
    "bare-cr": b"abc\rSet-Cookie: pwned=1",
    "bare-lf": b"abc\nSet-Cookie: pwned=1",
    "crlf": b"abc\r\nSet-Cookie: pwned=1",
    "obs-fold": b"abc\r\n Set-Cookie: pwned=1",
    "nul": b"abc\x00def",
    "latin1-high-bytes": b"\xff\xfe\xb2",
    "10kb": b"a" * 10_000,
}


def header_cases() -> list[Case]:
    """CR/LF, NUL and oversized values in the headers the API reads; sent raw, since httpx refuses them."""
    body = json.dumps({"title": "header injection probe"}).encode()
    cases = []
    for header in ("Idempotency-Key", "X-Request-ID", "traceparent", "If-Match", "Authorization"):
        for name, value in INJECTIONS.items():
            method, path = ("PATCH", "/api/bug-reports/{ref}") if header == "If-Match" else ("POST", "/api/bug-reports")
            auth = b"" if header == "Authorization" else b"Authorization: Bearer {auth}\r\n"
            if header == "Authorization":
                value = b"Bearer {auth}" + value
            payload = json.dumps({"severity": "low"}).encode() if header == "If-Match" else body
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
                + auth
                + b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n".encode()
                + header.encode()
                + b": "
                + value
                + b"\r\n\r\n"
            )
            cases.append(Case(f"header-{header.lower()}-{name}", "headers", method, path, raw=head + payload))
    if_match = {
        "superscript-digit": b'"\xb2"',
        "huge-version": b'"' + b"9" * 60 + b'"',
        "negative": b'"-1"',
        "weak-garbage": b'W/"x"',
        "list": b'"1", "2"',
    }
    for name, value in if_match.items():
        cases.append(
            Case(f"if-match-{name}", "refused", "PATCH", "/api/bug-reports/{ref}",
                 json={"severity": "low"}, headers={"If-Match": value})
        )  # fmt: skip
    length_cases = {
        "content-length-negative": b"-1",
        "content-length-huge": b"9" * 30,
        "content-length-not-a-number": b"abc",
        "content-length-twice": b"10\r\nContent-Length: 20",
    }
    for name, value in length_cases.items():
        head = (
            b"POST /api/bug-reports HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Authorization: Bearer {auth}\r\nContent-Type: application/json\r\nContent-Length: " + value + b"\r\n\r\n"
        )
        cases.append(Case(name, "protocol", "POST", "/api/bug-reports", raw=head + body))
    return cases


TRAVERSALS = {
    "dotdot": "../../etc/passwd",
    "dotdot-encoded-slash": "..%2f..%2fetc%2fpasswd",
    "dotdot-encoded": "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "double-encoded": "%252e%252e%252fetc%252fpasswd",
    "backslashes": "..%5c..%5cwindows%5cwin.ini",
    "sql-drop": "1;DROP%20TABLE%20bug_reports",
    "sql-or": "1'%20OR%20'1'='1",
    "nul": "1%00",
    "invalid-utf8": "%ff%fe",
    "huge-number": "9" * 40,
    "unicode-digits": "%c2%b2",
    "uuid-with-sql": "00000000-0000-0000-0000-000000000000'--",
}

ID_PATHS = {
    "get": ("GET", "/api/bug-reports/{}"),
    "patch": ("PATCH", "/api/bug-reports/{}"),
    "claim": ("POST", "/api/bug-reports/{}/claim"),
    "events": ("GET", "/api/bug-reports/{}/events"),
    "finish-run": ("POST", "/api/runs/{}/finish"),
    "revoke-token": ("DELETE", "/api/tokens/{}"),
    "envelope": ("POST", "/api/{}/envelope/"),
    "list-duplicates-of": ("GET", "/api/bug-reports?duplicates_of={}"),
}


def path_cases() -> list[Case]:
    """Traversal and SQL in every id a path carries; sent raw so nothing normalises the ``..`` away."""
    cases = []
    body = json.dumps({"outcome": "failed"}).encode()
    for where, (method, template) in ID_PATHS.items():
        for name, value in TRAVERSALS.items():
            path = template.format(value)
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                "Authorization: Bearer {auth}\r\nContent-Type: application/json\r\n"
                f"If-Match: *\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            cases.append(Case(f"path-{where}-{name}", "refused", method, path, raw=head + body))
    return cases


SQL = {
    "quote-or": "' OR '1'='1",
    "drop": "x'; DROP TABLE bug_reports; --",
    "double-quote": '" OR 1=1 --',
    "like-wildcards": "%_%",
    "backslash": "\\",
    "fts-syntax": 'title:* OR NEAR(a b) "',
    "union": "x' UNION SELECT token_hash FROM api_tokens --",
}
TYPED_SQL = ("quote-or", "drop", "union")  # typed filters refuse anything that is not their type: three suffice
TEXT_FILTERS = ("q", "category", "component", "assignee_id", "assigned_to", "claimed_by", "trace_id", "request_id",
                "release_sha", "fingerprint")  # fmt: skip
TYPED_FILTERS = ("status", "severity", "sort", "limit", "needs_human", "sla_breached", "include_duplicates",
                 "created_after", "created_before", "duplicates_of", "cursor")  # fmt: skip


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def filter_cases() -> list[Case]:
    """SQL metacharacters in every filter: text filters find nothing, typed ones are refused."""
    cases = []
    for name in TEXT_FILTERS:
        for kind, value in SQL.items():
            cases.append(Case(f"filter-{name}-{kind}", "empty", params={name: value}))
        cases.append(Case(f"filter-{name}-nul", "refused", params={name: "a\x00b"}))
        cases.append(Case(f"filter-{name}-long", "refused", params={name: "x" * 10_000}))
        cases.append(Case(f"filter-{name}-repeated-1000", "empty", params=[(name, f"v{i}") for i in range(1000)]))
    for name in TYPED_FILTERS:
        for kind in TYPED_SQL:
            value = SQL[kind]
            cases.append(Case(f"filter-{name}-{kind}", "refused", params={name: value}))
        cases.append(Case(f"filter-{name}-nul", "refused", params={name: "\x00"}))
    extremes = {
        "limit-huge": {"limit": str(2**200)},
        "limit-1e400": {"limit": "1e400"},
        "limit-zero": {"limit": "0"},
        "created-after-year-10000-via-offset": {"created_after": "9999-12-31T23:59:59-14:00"},
        "created-before-year-1": {"created_before": "0001-01-01T00:00:00"},
        "created-after-1e400": {"created_after": "1e400"},
        "created-after-huge-epoch": {"created_after": str(2**200)},
        "unknown-parameter-sql": {"1=1; --": "x"},
        "cursor-huge-number": {"sort": "number", "cursor": _cursor(["number", 0, 2**200])},
        "cursor-huge-negative-number": {"sort": "-number", "cursor": _cursor(["-number", 0, -(2**200)])},
        "cursor-float-number": {"cursor": _cursor(["-created_at", "2024-01-01T00:00:00+00:00", 1.5])},
        "cursor-year-10000": {"cursor": _cursor(["-created_at", "9999-12-31T23:59:59-14:00", 1])},
        "cursor-naive-year-1": {"cursor": _cursor(["-created_at", "0001-01-01T00:00:00", 1])},
        "cursor-object": {"cursor": _cursor({"-created_at": 1, "a": 2, "b": 3})},
        "cursor-nested": {"cursor": base64.urlsafe_b64encode(b"[" * 300 + b"]" * 300).decode()},
        "cursor-not-base64": {"cursor": "!!!!"},
        "cursor-invalid-utf8": {"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()},
        "events-huge": {"events": str(2**200)},
    }  # fmt: skip
    for name, params in extremes.items():
        path = "/api/bug-reports/{ref}" if "events" in params else "/api/bug-reports"
        expect = "read" if name.startswith("cursor-") else "refused"
        cases.append(Case(f"filter-{name}", expect, path=path, params=params))
    return cases


def _sentry_event(**overrides: Any) -> dict[str, Any]:
    data = {
        "level": "error",
        "exception": {"values": [{"type": "ValueError", "value": "bad qty", "stacktrace": {"frames": [
            {"filename": "app/cart.py", "function": "add_item", "lineno": 12, "in_app": True}]}}]},
    }  # fmt: skip
    data.update(overrides)
    return data


def _envelope(payload: bytes, header: bytes = b"{}") -> bytes:
    return header + b"\n" + json.dumps({"type": "event", "length": len(payload)}).encode() + b"\n" + payload + b"\n"


def sentry_cases() -> list[Case]:
    env = "/api/1/envelope/"
    store = "/api/1/store/"
    event = json.dumps(_sentry_event()).encode()
    bomb = gzip.compress(b"\x00" * (50 * MB), compresslevel=1)
    hundred_k = json.dumps(
        _sentry_event(exception={"values": [{"type": "RecursionError", "value": "deep",
                                             "stacktrace": {"frames": [{"function": "f"}] * 100_000}}]})
    ).encode()  # fmt: skip

    def c(name: str, expect: str, content: bytes, path: str = env, **headers: str) -> Case:
        return Case(f"sentry-{name}", expect, "POST", path, content=content, headers=headers, sentry=True)

    nul_everywhere = json.dumps(
        _sentry_event(
            message="a\x00b", transaction="t\x00", tags={"k\x00": "v\x00", "component": "c\x00"}, release="r\x00",
            exception={"values": [{"type": "Val\x00ue", "value": "x\x00y", "module": "m\x00"}]},
            user={"id": "u\x00"}, request={"url": "http://h/p\x00?q", "method": "G\x00ET"},
        )
    ).encode()  # fmt: skip
    surrogates = event.replace(b'"bad qty"', b'"\\ud800 bad"').replace(b'"add_item"', b'"\\udc80"')
    return [
        c("garbage-bytes", "refused", bytes(range(256)) * 10),
        c("empty", "refused", b""),
        c("gzip-bomb-50mb", "refused", bomb, **{"Content-Encoding": "gzip"}),
        c("brotli-bomb", "refused", brotli.compress(b"\x00" * (50 * MB), quality=5), **{"Content-Encoding": "br"}),
        c("deflate-bomb", "refused", zlib.compress(b"a" * (50 * MB), 1), **{"Content-Encoding": "deflate"}),
        c("truncated-gzip", "refused", gzip.compress(_envelope(event))[:-20], **{"Content-Encoding": "gzip"}),
        c("gzip-of-garbage", "refused", b"\x1f\x8b" + b"\xff" * 100, **{"Content-Encoding": "gzip"}),
        c("gzip-stacked-1000", "refused", _envelope(event), **{"Content-Encoding": ", ".join(["gzip"] * 1000)}),
        c("unknown-encoding", "refused", _envelope(event), **{"Content-Encoding": "zstd"}),
        c("header-nested-100k", "refused", b"[" * DEEP + b"]" * DEEP + b"\n"),
        c("event-nested-100k", "refused", _envelope(_nested(DEEP))),
        c("event-nested-900-extra", "honest", _envelope(event[:-1] + b', "extra": ' + _nested(900) + b"}")),
        c("event-nan", "refused", _envelope(event[:-1] + b', "extra": {"x": NaN}}')),
        c("event-timestamp-1e400", "honest", _envelope(event[:-1] + b', "timestamp": 1e400}')),
        c("event-timestamp-huge-int", "honest",
          _envelope(event[:-1] + b', "timestamp": ' + str(2**200).encode() + b"}")),
        c("event-timestamp-year-1", "honest", _envelope(event[:-1] + b', "timestamp": "0001-01-01T00:00:00"}')),
        c("event-invalid-utf8", "refused", _envelope(event.replace(b"bad qty", b"\xc3\x28\xff"))),
        c("event-nul-everywhere", "honest", _envelope(nul_everywhere)),
        c("event-lone-surrogates", "honest", _envelope(surrogates)),
        c("event-100k-frames-gzip", "honest", gzip.compress(_envelope(hundred_k)), **{"Content-Encoding": "gzip"}),
        c("event-id-crlf", "refused", _envelope(json.dumps(_sentry_event(event_id="abc\r\nx")).encode())),
        c("event-id-sql", "refused", _envelope(json.dumps(_sentry_event(event_id="1' OR '1'='1")).encode())),
        c("item-length-huge", "refused",
          b"{}\n" + json.dumps({"type": "event", "length": 2**200}).encode() + b"\n" + event),
        c("item-length-negative", "refused",
          b"{}\n" + json.dumps({"type": "event", "length": -5}).encode() + b"\n" + event),
        c("item-length-1e400", "refused", b'{}\n{"type": "event", "length": 1e400}\n' + event),
        c("10k-items", "refused", b"{}\n" + b'{"type": "session"}\n{}\n' * 10_000),
        c("two-events", "refused", _envelope(event) + json.dumps({"type": "event"}).encode() + b"\n" + event + b"\n"),
        c("dsn-garbage", "honest", _envelope(event, header=json.dumps({"dsn": "http://[::1"}).encode())),
        c("store-garbage-base64", "refused", base64.b64encode(b"\xff" * 100), path=store),
        c("store-nan", "refused", event[:-1] + b', "extra": NaN}', path=store),
        c("store-nested-100k", "refused", _nested(DEEP), path=store),
        c("store-nul-everywhere", "honest", nul_everywhere, path=store),
        Case("sentry-project-nul", "honest", "POST", "/api/%00/envelope/", content=_envelope(event), sentry=True),
        Case("sentry-project-surrogate-bytes", "honest", "POST", "/api/%ed%a0%80/envelope/", content=_envelope(event),
             sentry=True),
        Case("sentry-key-sql", "refused", "POST", env, content=_envelope(event),
             headers={"X-Sentry-Auth": "Sentry sentry_key=' OR '1'='1"}),
        Case("sentry-key-in-query-sql", "refused", "POST", env, content=_envelope(event),
             params={"sentry_key": "x' OR 1=1 --"}),
    ]  # fmt: skip


def all_cases() -> list[Case]:
    cases = []
    for endpoint in valid_endpoints():
        cases += body_cases(endpoint)
    cases += stack_cases() + header_cases() + path_cases() + filter_cases() + sentry_cases()
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


def _needs_ids(case: Case) -> bool:
    text = repr((case.path, case.json, case.headers, case.raw, case.content and case.content[:4096]))
    return any(f"{{{name}}}" in text for name in ("ref", "run", "token", "other", "uuid"))


def send(target: Any, case: Case, ids: dict[str, str]) -> Any:
    """Send ``case`` to ``target`` (a `hostile.Target`) and return its `hostile.Answer`."""
    from hostile import fill, raw_request

    if case.raw is not None:
        head = case.raw.replace(b"{auth}", target.server.secrets["admin"].encode())
        for key, value in ids.items():
            head = head.replace(b"{" + key.encode() + b"}", value.encode())
        return raw_request(target.server.url, head)
    headers = {k: fill(v, ids) if isinstance(v, str) else v for k, v in case.headers.items()}
    if case.sentry and not any(k.lower() == "x-sentry-auth" for k in headers) and not case.params:
        headers["X-Sentry-Auth"] = f"Sentry sentry_version=7, sentry_key={target.ingest_key}"
    if case.sentry:
        headers["Authorization"] = ""  # the admin client's bearer token must not authenticate an ingest
    kwargs: dict[str, Any] = {"headers": headers, "params": fill(case.params, ids) if case.params else None}
    if case.json is not None:
        kwargs["json"] = fill(case.json, ids)
    elif case.content is not None:
        kwargs["content"] = case.content
    return target.send(case.method, fill(case.path, ids), **kwargs)


def _problem_issues(answer: Any) -> list[str]:
    issues = []
    if not answer.headers.get("content-type", "").startswith("application/problem+json"):
        issues.append(f"content-type {answer.headers.get('content-type')!r} is not problem+json")
        return issues
    try:
        detail = answer.json().get("detail")
    except ValueError:
        return ["the problem body is not JSON"]
    if not isinstance(detail, str) or not detail.strip():
        issues.append("the problem has no detail message")
    return issues


def _renders(target: Any, ids: dict[str, str]) -> list[str]:
    """Everything stored still reads back: the listing with duplicates, and this case's report."""
    issues = []
    # The latest changes include whatever this case stored (a full listing would re-read megabytes each time).
    listing = target.admin.get(
        "/api/bug-reports", params={"include_duplicates": "true", "limit": 5, "sort": "-updated_at"}
    )
    if listing.status_code != 200:
        issues.append(f"after storing, the listing answers {listing.status_code}: {listing.text[:300]}")
    if "ref" in ids:
        for path in (f"/api/bug-reports/{ids['ref']}?events=500", f"/api/bug-reports/{ids['ref']}/events?limit=500"):
            got = target.admin.get(path)
            if got.status_code != 200:
                issues.append(f"after storing, GET {path} answers {got.status_code}: {got.text[:300]}")
    return issues


_REQUEST_ID = __import__("re").compile(r"^[\x21-\x7e]{1,128}$")


def run_case(target: Any, case: Case) -> list[str]:
    """Send one case and judge the answer; the list of what was wrong (empty: the server behaved)."""
    from hostile import database_snapshot

    ids = {**target.fresh(), "other": str(target.other)} if _needs_ids(case) else {}
    before = database_snapshot()
    answer = send(target, case, ids)
    issues: list[str] = []
    status = answer.status
    if status >= 500:
        issues.append(f"answered {status}: {answer.body[:500]!r}")
    elif case.expect == "empty":
        if status != 200:
            issues.append(f"expected 200 with no rows, got {status}: {answer.body[:300]!r}")
        elif answer.json().get("items") != []:
            issues.append(f"expected no rows, got {len(answer.json()['items'])}")
    elif case.expect in ("refused", "read") or (case.expect == "honest" and status >= 400):
        if not (400 <= status < 500 or (case.expect == "read" and status == 200)):
            issues.append(f"expected a 4xx refusal, got {status}: {answer.body[:300]!r}")
        elif status >= 400:
            issues += _problem_issues(answer)
    elif case.expect in ("stored", "honest"):
        if not 200 <= status < 300:
            issues.append(f"expected a 2xx, got {status}: {answer.body[:300]!r}")
        issues += _renders(target, ids)
    elif case.expect == "protocol":
        if not 400 <= status < 500 or not answer.body.strip():
            issues.append(f"expected a 4xx with a message, got {status}: {answer.body[:300]!r}")
    elif case.expect == "headers":
        if 200 <= status < 300:
            issues += _renders(target, ids)
        elif not 400 <= status < 500:
            issues.append(f"expected a 2xx or a 4xx, got {status}")
        if "set-cookie" in answer.headers:
            issues.append("an injected Set-Cookie header came back in the answer")
        echoed = answer.headers.get("x-request-id")
        if echoed is not None and not _REQUEST_ID.match(echoed):
            issues.append(f"the answer echoes an unsafe X-Request-ID {echoed[:80]!r}")
    refused = status >= 400 or case.expect in ("empty", "read")
    if refused and not issues:
        after = database_snapshot()
        if after != before:
            changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
            issues.append(f"refused input changed the database: {changed}")
    if not target.alive():
        issues.append("the server no longer answers /api/health")
    return issues
