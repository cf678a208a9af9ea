"""The OpenAPI document: committed copy up to date, and schemathesis fuzzing every operation on the live server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bugdesk import service
from bugdesk.api import openapi, schemas
from bugdesk.service import runs

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 12, schemathesis.GenerationMode.NEGATIVE: 6}


def test_the_committed_openapi_document_is_current():
    assert DOCUMENT.read_text(encoding="utf-8") == openapi.render(), (
        "docs/openapi.json is stale: run `uv run python -m bugdesk.api.openapi > docs/openapi.json`"
    )


def test_the_schema_vocabularies_match_the_lifecycle():
    from typing import get_args

    for literal, vocabulary in schemas.VOCABULARIES.items():
        assert get_args(literal) == tuple(vocabulary)


def test_every_route_is_in_the_api_docs():
    text = (DOCUMENT.parent / "api.md").read_text(encoding="utf-8")
    for path, methods in openapi.document()["paths"].items():
        for method in methods:
            assert f"`{method.upper()} {path}`" in text, f"{method.upper()} {path} is missing from docs/api.md"


def _seed(live) -> None:
    """A few reports (one claimed, one duplicate, one with a run) so generated refs 1..5 hit real rows."""
    for i in range(4):
        service.create_report({"title": f"seeded report {'ghjk'[i]}", "severity": "high"}, "seed")
    service.create_report({"title": "seeded report g", "severity": "high"}, "seed")
    service.claim_next("seed-agent")
    runs.start_agent_run(2, "seed-agent")


def test_schemathesis_finds_no_server_error_and_no_schema_violation(live):
    _seed(live)
    # An admin token whose name nothing generated will match, so DELETE /api/tokens/{name} cannot revoke it.
    secret = live.add_token(f"fuzz-{uuid.uuid4().hex}", "admin")
    auth = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text(encoding="utf-8")))
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, count in EXAMPLES.items():

            @settings(
                max_examples=count,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],  # no shrinking: keeps the run bounded
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def exercise(case):
                if isinstance(case.body, dict) and isinstance(case.body.get("wait"), int | float):
                    case.body["wait"] = min(case.body["wait"], 0.05)  # long-polls would eat the time budget
                case.call_and_validate(base_url=live.url, headers=auth, checks=CHECKS, timeout=10)

            try:
                exercise()
            except Unsatisfiable:
                continue  # no invalid input exists (an operation without parameters)
            except Exception as exc:  # collect every operation's failure, not just the first
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("path", ["/api/docs", "/api/openapi.json"])
def test_the_live_docs_are_served(live, path):
    assert live.client(None).get(path).status_code == 200
