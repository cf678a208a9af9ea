"""The ingest endpoints over HTTP: auth, encodings, ignored items, limits (413, 429), malformed bodies (400), no 5xx."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from dataclasses import replace

import brotli
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bugdesk.api.routes import sentry as route
from bugdesk.db import database
from bugdesk.models import BugReport
from bugdesk.sentry.envelope import Limits


def event(**overrides) -> dict:
    data = {
        "event_id": uuid.uuid4().hex,
        "level": "error",
        "release": "2.0.1",
        "exception": {"values": [{"type": "ValueError", "value": "bad qty", "stacktrace": {"frames": [
            {"filename": "app/cart.py", "function": "add_item", "lineno": 12, "in_app": True}]}}]},
    }  # fmt: skip
    data.update(overrides)
    return data


def envelope(*items: tuple[dict, bytes], header: dict | None = None) -> bytes:
    parts = [json.dumps(header or {}).encode()]
    for item_header, payload in items:
        parts += [json.dumps(item_header).encode(), payload]
    return b"\n".join(parts) + b"\n"


def event_envelope(ev: dict, with_length: bool = True) -> bytes:
    payload = json.dumps(ev).encode()
    header = {"type": "event", "length": len(payload)} if with_length else {"type": "event"}
    return envelope((header, payload), header={"event_id": ev["event_id"]})


@pytest.fixture
def post(live):
    client = httpx.Client(base_url=live.url, timeout=30)
    live.clients.append(client)
    key = live.secrets["ingest"]

    def send(body: bytes, *, path: str = "/api/1/envelope/", auth: str | None = "header", **headers) -> httpx.Response:
        params = {}
        if auth == "header":
            headers["X-Sentry-Auth"] = f"Sentry sentry_version=7, sentry_key={key}, sentry_client=test/1"
        elif auth == "query":
            params["sentry_key"] = key
        return client.post(path, content=body, params=params, headers=headers)

    return send


def stored() -> int:
    with database.connection_context():
        return BugReport.select().count()


def test_auth_by_header_query_or_envelope_dsn(live, post):
    ev = event()
    assert post(event_envelope(ev)).json() == {"id": ev["event_id"]}
    assert post(event_envelope(event()), auth="query").status_code == 200
    dsn_header = {"event_id": uuid.uuid4().hex, "dsn": f"http://{live.secrets['ingest']}@x/1"}
    assert post(envelope(({"type": "event"}, json.dumps(event()).encode()), header=dsn_header), auth=None).is_success
    assert stored() == 3

    assert post(event_envelope(event()), auth=None).status_code == 401
    bad = post(event_envelope(event()), auth=None, **{"X-Sentry-Auth": "Sentry sentry_key=nope"})
    assert bad.status_code == 401 and bad.headers["content-type"] == "application/problem+json"
    reader = live.add_token("just-reader", "read")
    assert (
        post(event_envelope(event()), auth=None, **{"X-Sentry-Auth": f"Sentry sentry_key={reader}"}).status_code == 403
    )
    assert stored() == 3


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress), (None, lambda b: b)],
)
def test_encodings_and_store_endpoint(post, encoding, compress):
    headers = {"Content-Encoding": encoding} if encoding else {}
    assert post(compress(event_envelope(event(), with_length=False)), **headers).status_code == 200
    ev = event()
    answer = post(compress(json.dumps(ev).encode()), path="/api/1/store/", **headers)
    assert answer.status_code == 200 and answer.json() == {"id": ev["event_id"]}
    assert stored() == 2


def test_non_error_items_are_accepted_and_ignored(post):
    body = envelope(
        ({"type": "transaction"}, json.dumps({"type": "transaction", "spans": []}).encode()),
        ({"type": "sessions"}, b'{"aggregates":[]}'),
        ({"type": "client_report"}, b'{"discarded_events":[]}'),
        ({"type": "attachment", "length": 3}, b"\x00\x01\x02"),
        ({"type": "check_in"}, b"{}"),
        ({"type": "profile"}, b"{}"),
        header={"event_id": "9" * 32},
    )
    answer = post(body)
    assert answer.status_code == 200 and answer.json() == {"id": "9" * 32}
    assert post(b'{}\n{"type":"session"}\n{"status":"ok"}\n').json() == {}
    assert stored() == 0


def test_message_event_and_one_event_per_id(post):
    ev = {"event_id": uuid.uuid4().hex, "message": "queue stalled", "level": "warning"}
    for _ in range(3):  # SDK retries
        assert post(event_envelope(ev)).json() == {"id": ev["event_id"]}
    assert stored() == 1


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"", {}, "empty"),
        (b"garbage\n", {}, "not valid JSON"),
        (b'{}\n{"type":"event","length":500}\n{}', {}, "declares 500 bytes"),
        (b'{}\n{"type":"event"}\n[1,2]', {}, "must be a JSON object"),
        (b'{}\n{"type":"event"}\n{"level":"error"}', {}, "neither an exception nor a message"),
        (b'{}\n{"type":"event"}\n{"message":"a"}\n{"type":"event"}\n{"message":"b"}', {}, "at most one event"),
        (b'{}\n{"type":"event"}\n{"message":"a","event_id":"xyz"}', {}, "event_id must be 32 hex"),
        (b"\x1f\x8b\x08 broken", {"Content-Encoding": "gzip"}, "not valid gzip"),
        (b"{}", {"Content-Encoding": "zstd"}, "unsupported Content-Encoding"),
    ],
)
def test_malformed_bodies_get_400_with_a_message(post, body, headers, message):
    answer = post(body, **headers)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["detail"]
    assert stored() == 0


def test_odd_fields_are_dropped_and_a_refused_event_is_a_400(post, monkeypatch):
    ev = event(request={"headers": {"X-Request-Id": "x" * 200}})
    ev["exception"]["values"][0]["type"] = "E" * 300
    assert post(event_envelope(ev)).status_code == 200  # a too-long request id is dropped, a long type cut
    # Should the mapping ever produce data the service refuses, the SDK gets a 400 and nothing is stored.
    monkeypatch.setattr(route, "report_from_event", lambda event, **kw: {"title": "t", "severity": "urgent"})
    answer = post(event_envelope(event()))
    assert answer.status_code == 400 and "cannot be stored as a report" in answer.json()["detail"]
    assert stored() == 1


def test_limits_413(post, monkeypatch):
    monkeypatch.setattr(route, "CONFIG", replace(route.CONFIG, limits=Limits(envelope=20_000, event=2_000)))
    big = event(message="x" * 3_000)
    answer = post(event_envelope(big))
    assert answer.status_code == 413 and "limit is 2000" in answer.json()["detail"]
    bomb = gzip.compress(b'{}\n{"type":"attachment"}\n' + b"0" * 1_000_000)
    assert post(bomb, **{"Content-Encoding": "gzip"}).status_code == 413
    assert post(b"x" * 2_000_000).status_code == 413  # the API's raw body limit
    assert stored() == 0


def test_backpressure_429_with_retry_after(post, monkeypatch):
    monkeypatch.setattr(route, "CONFIG", replace(route.CONFIG, max_backlog=0))
    answer = post(event_envelope(event()))
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "1" and answer.headers["X-Sentry-Rate-Limits"] == "1::organization"
    assert stored() == 0


# A sample of fuzzed bodies over HTTP (the parser itself is fuzzed at volume in test_sentry_envelope).
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=200)
    | st.lists(
        st.binary(max_size=40) | st.just(b'{"type":"event"}') | st.just(b'{"type":"event","length":7}'), max_size=5
    ).map(b"\n".join),
    encoding=st.sampled_from([None, "gzip", "br", "deflate"]),
)
def test_fuzz_http_never_5xx(post, body, encoding):
    answer = post(body, **({"Content-Encoding": encoding} if encoding else {}))
    assert answer.status_code < 500, answer.text


def test_dsn_cli(tmp_path):
    from typer.testing import CliRunner

    from bugdesk.cli import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    assert runner.invoke(app, ["--db", url, "db", "upgrade"]).exit_code == 0
    made = runner.invoke(app, ["--db", url, "dsn", "create", "shop", "--port", "9000", "--project", "3"])
    assert made.exit_code == 0, made.output
    dsn = made.output.strip().splitlines()[-1]
    assert dsn.startswith("http://bd_") and dsn.endswith("@127.0.0.1:9000/3")
    listed = runner.invoke(app, ["--db", url, "dsn", "list", "--json"])
    assert [r["name"] for r in json.loads(listed.output)] == ["shop"]
    assert json.loads(listed.output)[0]["scopes"] == "ingest"
