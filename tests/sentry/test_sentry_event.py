"""Mapping a Sentry event to report data: titles, chains, frames, levels, request, tags, user; lenient on shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bugdesk.sentry.envelope import EnvelopeError
from bugdesk.sentry.event import event_id_of, report_from_event
from bugdesk.service.reports import normalize_new_report

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def frame(function: str, filename: str = "app/orders.py", lineno: int = 10, **extra) -> dict:
    return {"filename": filename, "abs_path": f"/srv/{filename}", "function": function, "lineno": lineno, **extra}


def chained_event(**overrides) -> dict:
    event = {
        "event_id": "0123456789abcdef0123456789abcdef",
        "level": "fatal",
        "platform": "python",
        "release": "4f2a9c1d",
        "environment": "prod",
        "timestamp": "2025-12-31T23:00:00Z",
        "exception": {
            "values": [
                {"type": "KeyError", "value": "'sku'", "module": None, "stacktrace": {"frames": [frame("price")]}},
                {
                    "type": "PricingError",
                    "module": "shop.errors",
                    "value": "no price for order 77\nsecond line",
                    "mechanism": {"type": "chained", "source": "__cause__", "handled": False},
                    "stacktrace": {
                        "frames": [
                            frame("handle", "/venv/lib/python3.11/site-packages/flask/app.py", 900),
                            frame("checkout", context_line="    raise PricingError(...) from exc"),
                        ]
                    },
                },
            ]
        },
        "contexts": {"trace": {"trace_id": "ABCDEF0123456789ABCDEF0123456789", "span_id": "0011223344556677"}},
        "request": {"url": "https://shop.example/api/orders/77?x=1", "method": "post",
                    "headers": {"X-Request-Id": "req-77"}},
        "transaction": "/api/orders/<int:order_id>",
        "tags": [["component", "checkout"], ["region", "eu"]],
        "user": {"id": 42, "ip_address": "10.0.0.1"},
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
    }  # fmt: skip
    event.update(overrides)
    return event


def test_chained_exception_event():
    data = report_from_event(chained_event(), event_id="e" * 32, project="1", now=NOW)
    assert data["title"] == "shop.errors.PricingError: no price for order 77"
    assert data["exception_type"] == "shop.errors.PricingError"
    assert data["severity"] == "critical" and data["source"] == "system"
    assert data["release"] == "4f2a9c1d" and data["environment"] == "prod"
    assert data["trace_id"] == "abcdef0123456789abcdef0123456789"
    assert data["route"] == "POST /api/orders/{id}" and data["request_id"] == "req-77"
    assert data["component"] == "checkout" and data["reporter_id"] == "42"
    assert data["created_at"] == datetime(2025, 12, 31, 23, tzinfo=UTC)
    details = data["details"]
    assert [f["function"] for f in details["frames"]] == ["handle", "checkout"]  # the raised one, outermost first
    assert [f["in_app"] for f in details["frames"]] == [False, True]
    assert details["chain"][0]["type"] == "KeyError" and details["handled"] is False
    assert details["transaction"] == "/api/orders/<int:order_id>" and details["tags"]["region"] == "eu"
    assert details["sentry"] == {"event_id": "e" * 32, "project": "1"}
    text = data["stacktrace"]
    assert text.startswith('Traceback (most recent call last):\n  File "/srv/app/orders.py", line 10, in price')
    assert "KeyError: 'sku'\n\nThe above exception was the direct cause of the following exception:\n\n" in text
    assert text.endswith(
        "    raise PricingError(...) from exc\nshop.errors.PricingError: no price for order 77\nsecond line"
    )
    values = normalize_new_report(data)
    assert values["release_sha"] == "4f2a9c1d"


def test_message_event_and_levels():
    event = {
        "logentry": {"message": "disk %s full", "params": ["/var"], "formatted": "disk /var full"},
        "level": "info",
    }
    data = report_from_event(event, now=NOW)
    assert data["title"] == "disk /var full" and data["category"] == "log" and data["severity"] == "low"
    assert "exception_type" not in data
    assert report_from_event({"message": "x", "level": "warning"})["severity"] == "medium"
    assert report_from_event({"message": "x", "level": "debug"})["severity"] == "low"
    assert report_from_event({"message": "x"})["severity"] == "high"
    assert report_from_event({"message": "x", "release": "shop@1.2"})["release"] == "shop@1.2"
    assert normalize_new_report(report_from_event({"message": "x", "release": "shop@1.2"}))["details"]["release"] == (
        "shop@1.2"
    )


def test_attached_stacktrace_of_a_message_gives_frames():
    event = {"message": "slow", "threads": {"values": [{"stacktrace": {"frames": [frame("tick")]}}]}}
    assert report_from_event(event)["details"]["frames"][0]["function"] == "tick"


def test_odd_shapes_are_dropped_not_fatal():
    event = chained_event(tags="nope", user=["x"], request={"url": 3}, contexts={"trace": {"trace_id": "zz"}},
                          timestamp=[1], level=None, release={"v": 1}, environment="a" * 300)  # fmt: skip
    data = report_from_event(event, now=NOW)
    assert "trace_id" not in data and "route" not in data and "reporter_id" not in data and "created_at" not in data
    normalize_new_report(data)
    future = report_from_event({"message": "x", "timestamp": 4_000_000_000}, now=NOW)
    assert future["created_at"] == NOW  # a client clock in the future is clamped


def test_nothing_to_report_and_bad_event_ids():
    with pytest.raises(EnvelopeError, match="neither an exception nor a message"):
        report_from_event({"level": "error"})
    with pytest.raises(EnvelopeError, match="must be a JSON object"):
        report_from_event([1])  # type: ignore[arg-type]
    assert event_id_of({"event_id": "0123456789ABCDEF-0123456789abcdef"}) == "0123456789abcdef0123456789abcdef"
    assert event_id_of({}, {"event_id": "f" * 32}) == "f" * 32
    assert event_id_of({}) is None
    with pytest.raises(EnvelopeError, match="event_id must be 32 hex"):
        event_id_of({"event_id": "nope"})


# Sentry-shaped events with random values: the mapping gives data the service accepts, or refuses clearly.
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=10,
)
keys = ["exception", "message", "logentry", "level", "release", "environment", "contexts", "request", "tags",
        "user", "transaction", "timestamp", "threads", "stacktrace", "sdk", "platform"]  # fmt: skip
frames = st.lists(
    st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(
            ["filename", "abs_path", "module", "function", "lineno", "in_app", "context_line"], anything
        ),
    ),
    max_size=3,
)
exceptions = st.fixed_dictionaries({"values": st.lists(st.fixed_dictionaries({}, optional={
    "type": anything, "value": anything, "module": anything, "mechanism": anything,
    "stacktrace": st.fixed_dictionaries({"frames": frames})}), max_size=3)})  # fmt: skip
events = st.fixed_dictionaries({}, optional={**dict.fromkeys(keys, anything), "exception": exceptions | anything})


@settings(max_examples=300, deadline=None)
@given(events)
def test_fuzz_mapping_gives_storable_data(event):
    try:
        data = report_from_event(event, now=NOW)
    except EnvelopeError:
        return
    normalize_new_report(data)


def test_the_stored_url_drops_the_query_string_that_may_carry_secrets():
    event = chained_event(request={"url": "https://shop.example/api/orders/77?token=s3cret&x=1", "method": "get"})
    data = report_from_event(event, event_id="e" * 32, project="1", now=NOW)
    assert data["details"]["url"] == "https://shop.example/api/orders/77"
    assert "s3cret" not in repr(data)
