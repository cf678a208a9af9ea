"""Hypothesis fuzz over HTTP of every endpoint's body and headers, the listing's query string, ids in paths and the
Sentry ingest (raw bytes, gzip, envelopes around arbitrary events), against one live SQLite server.

No answer may be a 5xx; every 4xx is a problem with a detail and leaves the database as it was; the server still
answers at the end. ``BUGDESK_FUZZ_EXAMPLES`` sets the examples per endpoint (default 80, derandomized, so CI
replays the same cases); a long campaign is ``benchmarks/fuzz_campaign.py``. The cases tried are printed in the
terminal summary ("fuzz cases tried").
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz import bodies, check, header_sets, json_values, query_params, sentry_bodies
from hostile import Target, backend_url, fresh_ids, live_target, valid_endpoints

EXAMPLES = int(os.environ.get("BUGDESK_FUZZ_EXAMPLES", "80"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("BUGDESK_FUZZ_RANDOM") != "1",
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)
ENDPOINTS = valid_endpoints()


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Iterator[Target]:
    with live_target(backend_url("sqlite", tmp_path_factory.mktemp("fuzz"))) as live:
        yield live
        assert live.alive(), "the server stopped answering during the fuzz"


def _needs_ids(endpoint) -> bool:
    return "{" in endpoint.path or "{token}" in repr(endpoint.body)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_fuzzed_bodies_and_headers_never_get_a_server_error(target, endpoint):
    @FUZZ
    @given(body=bodies(endpoint), headers=header_sets)
    def fuzz(body, headers):
        ids = fresh_ids(target) if _needs_ids(endpoint) else {}
        headers = {**{k: v.encode() for k, v in endpoint.headers.items()}, **headers}
        headers.setdefault("Content-Type", b"application/json")
        headers.pop("Authorization", None)  # the fuzz is about input, not about who is asking
        check(target, endpoint.name, endpoint.method, endpoint.path, ids, content=body, headers=headers)

    fuzz()
    assert target.alive()


def test_fuzzed_listing_filters_never_get_a_server_error(target):
    @FUZZ
    @given(params=query_params)
    def fuzz(params):
        check(target, "list", "GET", "/api/bug-reports", {}, params=params)

    fuzz()
    assert target.alive()


@pytest.mark.parametrize(
    ("name", "method", "template"),
    [
        ("get-by-ref", "GET", "/api/bug-reports/{}"),
        ("events-by-ref", "GET", "/api/bug-reports/{}/events"),
        ("runs-by-ref", "GET", "/api/bug-reports/{}/runs"),
        ("split-by-ref", "POST", "/api/bug-reports/{}/split"),
        ("finish-by-run-id", "POST", "/api/runs/{}/finish"),
        ("revoke-by-name", "DELETE", "/api/tokens/{}"),
    ],
)
def test_fuzzed_ids_in_paths_never_get_a_server_error(target, name, method, template):
    @FUZZ
    @given(ident=st.text(min_size=1, max_size=60) | st.integers(min_value=-(2**80), max_value=2**80).map(str))
    def fuzz(ident):
        path = template.format(quote(ident, safe=""))
        check(target, name, method, path, {}, json={"outcome": "failed"})

    fuzz()
    assert target.alive()


@pytest.mark.parametrize("kind", ["envelope", "store"])
def test_fuzzed_sentry_bodies_never_get_a_server_error(target, kind):
    @FUZZ
    @given(body=sentry_bodies | json_values.map(lambda v: __import__("json").dumps(v).encode()),
           gzip_header=st.booleans(), project=st.sampled_from(["1", "42", "x%00", "%ff"]))  # fmt: skip
    def fuzz(body, gzip_header, project):
        headers = {"X-Sentry-Auth": f"Sentry sentry_key={target.ingest_key}", "Authorization": ""}
        if gzip_header:
            headers["Content-Encoding"] = "gzip"
        check(target, f"sentry-{kind}", "POST", f"/api/{project}/{kind}/", {}, content=body, headers=headers)

    fuzz()
    assert target.alive()
