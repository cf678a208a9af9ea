"""The envelope parser and body decoder: framing with and without lengths, encodings, limits, and fuzzing."""

from __future__ import annotations

import contextlib
import gzip
import json
import zlib

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bugdesk.sentry.envelope import (
    EnvelopeError,
    Limits,
    TooLarge,
    decode_body,
    parse_envelope,
    parse_store_body,
)

EVENT = json.dumps({"event_id": "a" * 32, "message": "line one\nline two"}).encode()


def test_items_with_and_without_length():
    data = (
        b'{"event_id":"' + b"a" * 32 + b'","dsn":"http://k@h/1"}\n'
        + b'{"type":"event","length":' + str(len(EVENT)).encode() + b"}\n" + EVENT + b"\n"
        + b'{"type":"session"}\n{"sid":"x","status":"ok"}\n'
        + b'{"type":"attachment","length":4,"filename":"a.bin"}\n\x00\n\r\xff'
    )  # fmt: skip
    envelope = parse_envelope(data)
    assert envelope.headers["event_id"] == "a" * 32
    assert [i.type for i in envelope.items] == ["event", "session", "attachment"]
    assert envelope.items[0].json()["message"] == "line one\nline two"  # a length lets the payload hold newlines
    assert envelope.items[1].json() == {"sid": "x", "status": "ok"}
    assert envelope.items[2].payload == b"\x00\n\r\xff"


def test_last_item_may_end_without_newline_and_header_alone_is_valid():
    assert parse_envelope(b'{}\n{"type":"event","length":2}\n{}').items[0].json() == {}
    assert parse_envelope(b'{}\n{"type":"event"}\n{}').items[0].json() == {}
    assert parse_envelope(b'{"event_id":"x"}').items == []
    assert parse_envelope(b'{}\n{"type":"client_report"}\n').items[0].payload == b""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"not json\n", "envelope header is not valid JSON"),
        (b"[1]\n", "must be a JSON object"),
        (b'{}\n{"length":2}\n{}', "no type"),
        (b'{}\n{"type":"event","length":99}\n{}', "declares 99 bytes but only 2 follow"),
        (b'{}\n{"type":"event","length":-1}\n{}', "invalid length"),
        (b'{}\n{"type":"event","length":"2"}\n{}', "invalid length"),
        (b'{}\n{"type":"event","length":1}\n{}', "not followed by a newline"),
        (b'{}\n{"type":"event"\n', "header of item 1 is not valid JSON"),
    ],
)
def test_malformed_envelopes_say_what_is_wrong(data, message):
    with pytest.raises(EnvelopeError, match=message) as caught:
        parse_envelope(data)
    assert caught.value.http_status == 400


def test_limits():
    big = b'{"message":"' + b"x" * 2000 + b'"}'
    with pytest.raises(TooLarge, match="event is 2014 bytes; the limit is 1000"):
        parse_envelope(b'{}\n{"type":"event"}\n' + big, Limits(event=1000))
    # The same size as an attachment is not an event: only the envelope limit applies.
    assert parse_envelope(b'{}\n{"type":"attachment"}\n' + big, Limits(event=1000)).items
    with pytest.raises(TooLarge):
        parse_envelope(b"{}\n" + b'{"type":"session"}\n{}\n' * 10, Limits(envelope=50))
    with pytest.raises(EnvelopeError, match="more than 3 items"):
        parse_envelope(b"{}\n" + b'{"type":"session"}\n{}\n' * 4, Limits(items=3))
    assert TooLarge("x").http_status == 413


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda b: (gzip.compress(b), "gzip"), id="gzip"),
        pytest.param(lambda b: (zlib.compress(b), "deflate"), id="deflate-zlib"),
        pytest.param(lambda b: (zlib.compress(b, wbits=-15), "deflate"), id="deflate-raw"),
        pytest.param(lambda b: (brotli.compress(b), "br"), id="br"),
        pytest.param(lambda b: (b, None), id="identity"),
        pytest.param(lambda b: (brotli.compress(gzip.compress(b)), "gzip, br"), id="stacked"),
    ],
)
def test_encodings(encode):
    body, encoding = encode(EVENT)
    assert decode_body(body, encoding) == EVENT


def test_compression_bombs_and_bad_streams():
    bomb = b"\x00" * 5_000_000
    for body, encoding in (
        (gzip.compress(bomb), "gzip"),
        (brotli.compress(bomb), "br"),
        (zlib.compress(bomb), "deflate"),
    ):
        with pytest.raises(TooLarge, match="decompresses to more than 100000 bytes"):
            decode_body(body, encoding, limit=100_000)
    with pytest.raises(EnvelopeError, match="not valid gzip"):
        decode_body(b"plain text", "gzip")
    with pytest.raises(EnvelopeError, match="truncated"):
        decode_body(gzip.compress(EVENT)[:-12], "gzip")
    with pytest.raises(EnvelopeError, match=r"not valid br|br body is truncated"):
        decode_body(b"\xff\xff\xff\xff", "br")
    with pytest.raises(EnvelopeError, match="unsupported Content-Encoding 'zstd'"):
        decode_body(EVENT, "zstd")


def test_store_body_json_or_legacy_base64_deflate():
    import base64

    assert parse_store_body(EVENT)["event_id"] == "a" * 32
    assert parse_store_body(base64.b64encode(zlib.compress(EVENT)))["event_id"] == "a" * 32
    with pytest.raises(EnvelopeError, match="neither JSON nor base64"):
        parse_store_body(b"hello there")
    with pytest.raises(EnvelopeError, match="must be a JSON object"):
        parse_store_body(b"[1, 2]")


# ---------------------------------------------------------------------------------------------
# fuzzing: whatever arrives, the parser answers with its own error or a result, nothing else
# ---------------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
item_headers = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["event", "transaction", "session", "attachment", "", 3]) | st.text(max_size=8),
        "length": st.integers(-5, 300) | st.text(max_size=3) | st.none(),
        "content_type": st.text(max_size=10),
    },
)


@st.composite
def envelopes(draw) -> bytes:
    """Envelope-shaped bytes: real framing with random headers, payloads and (often wrong) lengths."""
    parts = [json.dumps(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4))).encode()]
    for _ in range(draw(st.integers(0, 4))):
        header = draw(item_headers)
        payload = draw(st.binary(max_size=80) | json_values.map(lambda v: json.dumps(v).encode()))
        if draw(st.booleans()) and "length" in header:
            header["length"] = len(payload)  # right half of the time
        parts += [json.dumps(header).encode(), payload]
    data = b"\n".join(parts)
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + draw(st.binary(max_size=8)) + data[cut:]
    return data


@st.composite
def bodies(draw) -> tuple[bytes, str | None]:
    """A body and a Content-Encoding: well-compressed, corrupted or falsely labelled."""
    data = draw(envelopes() | st.binary(max_size=200))
    encoding = draw(st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip, br", "compress"]))
    if draw(st.booleans()):
        compress = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}.get(encoding or "")
        data = compress(data) if compress else data
        if draw(st.booleans()) and data:
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    return data, encoding


def _parse_all(data: bytes, encoding: str | None) -> None:
    from bugdesk.sentry.event import event_id_of, report_from_event

    decoded = decode_body(data, encoding, limit=64 * 1024)
    for item in parse_envelope(decoded, Limits(envelope=64 * 1024, event=4096)).items:
        if item.type == "event":
            event = item.json()
            if isinstance(event, dict):
                report_from_event(event, event_id=event_id_of(event))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_fuzz_parser_raises_only_its_own_error(body):
    with contextlib.suppress(EnvelopeError):
        _parse_all(*body)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data):
    for parse in (parse_envelope, parse_store_body):
        with contextlib.suppress(EnvelopeError):
            parse(data)
