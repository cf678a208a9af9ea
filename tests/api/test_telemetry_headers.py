"""bugdesk.telemetry: W3C traceparent parsing, request ids, and filling a submission from headers."""

from __future__ import annotations

import pytest

from bugdesk.telemetry import fill_submission, parse_traceparent, request_id_from

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_valid_traceparent_gives_trace_and_span_ids():
    assert parse_traceparent(VALID) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert parse_traceparent(f"  {VALID} ") is not None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        VALID.upper(),  # upper-case hex is invalid
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",  # all-zero span id
        "ff" + VALID[2:],  # version ff is forbidden
        VALID + "-extra",  # version 00 has exactly four fields
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
    ],
)
def test_invalid_traceparents_are_rejected(value):
    assert parse_traceparent(value) is None


def test_a_future_version_may_carry_more_fields():
    assert parse_traceparent("01" + VALID[2:] + "-what-comes-next") is not None


def test_request_ids_come_from_x_request_id_then_x_correlation_id():
    assert request_id_from({"X-Request-ID": "abc"}) == "abc"
    assert request_id_from({"x-correlation-id": "corr-1"}) == "corr-1"
    assert request_id_from({"X-Request-ID": "a", "X-Correlation-ID": "b"}) == "a"
    assert request_id_from({}) is None


@pytest.mark.parametrize("value", ["has space", "x" * 129, "tab\there", "", "naïve"])
def test_unprintable_or_long_request_ids_are_ignored(value):
    assert request_id_from({"X-Request-ID": value}) is None


def test_headers_and_release_fill_only_what_the_payload_lacks():
    headers = {"traceparent": VALID, "X-Request-ID": "req-1"}
    filled = fill_submission({"title": "t"}, headers, "abcdef1")
    assert filled == {
        "title": "t",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "request_id": "req-1",
        "release_sha": "abcdef1",
    }
    explicit = {"title": "t", "trace_id": "a" * 32, "request_id": "mine", "release": "2.0"}
    assert fill_submission(explicit, headers, "abcdef1") is explicit


def test_nothing_to_fill_returns_the_same_dict():
    data = {"title": "t"}
    assert fill_submission(data, {}, None) is data and fill_submission(data, {}, "") is data
