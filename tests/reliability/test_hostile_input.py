"""A corpus of hostile requests over a real socket to a live server (SQLite and PostgreSQL): deeply nested JSON,
10 MB strings, NUL bytes, invalid UTF-8, huge numbers, 100k-frame stack traces, header injection, path traversal in
ids, SQL metacharacters in every filter, and hostile Sentry envelopes. Each answer is a 4xx problem with a message
(or an honest 2xx where the input is valid), never a 5xx; the server stays up; refused input changes nothing.

The corpus and its expectations are in ``corpus.py``; ``benchmarks/fuzz_campaign.py`` replays it too.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import all_cases, run_case
from hostile import Target, backend_url, live_target

CASES = all_cases()
# PostgreSQL differs from SQLite in what it can store and compare (NUL, surrogates, numbers, timestamps,
# JSON): those cases run on both backends; the rest exercise the API layer, which is the same code on either.
BACKEND_SENSITIVE = ("nul", "surrogate", "huge", "1e400", "nested-900", "cursor", "created", "year", "drop", "union",
                     "sentry-event", "sentry-store", "sentry-project", "latin1", "crlf")  # fmt: skip
POSTGRES_CASES = [case for case in CASES if any(word in case.id for word in BACKEND_SENSITIVE)]


@contextlib.contextmanager
def _target(kind: str, request, tmp_path_factory) -> Iterator[Target]:
    postgres = request.getfixturevalue("_postgres_schema") if kind == "postgres" else None
    with live_target(backend_url(kind, tmp_path_factory.mktemp("hostile"), postgres)) as live:
        yield live


@pytest.fixture(scope="module")
def sqlite_target(request, tmp_path_factory) -> Iterator[Target]:
    with _target("sqlite", request, tmp_path_factory) as live:
        yield live


@pytest.fixture(scope="module")
def postgres_target(request, tmp_path_factory) -> Iterator[Target]:
    with _target("postgres", request, tmp_path_factory) as live:
        yield live


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_on_sqlite_is_refused_with_a_problem_or_honestly_served_and_the_server_stays_up(
    sqlite_target, case
):
    issues = run_case(sqlite_target, case)
    assert not issues, f"{case.id}: " + "; ".join(issues)


@pytest.mark.parametrize("case", POSTGRES_CASES, ids=[case.id for case in POSTGRES_CASES])
def test_hostile_input_on_postgres_is_refused_with_a_problem_or_honestly_served_and_the_server_stays_up(
    postgres_target, case
):
    issues = run_case(postgres_target, case)
    assert not issues, f"{case.id}: " + "; ".join(issues)


def test_the_corpus_covers_every_write_endpoint_and_every_filter():
    from corpus import TEXT_FILTERS, TYPED_FILTERS
    from hostile import valid_endpoints

    from bugdesk.api.routes.reports import ReportQuery

    assert set(TEXT_FILTERS) | set(TYPED_FILTERS) == set(ReportQuery.model_fields)
    ids = {case.id.split("-")[0] for case in CASES}
    for endpoint in valid_endpoints():
        if endpoint.body:
            assert endpoint.name.split("-")[0] in ids, endpoint.name
