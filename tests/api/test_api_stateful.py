"""Schemathesis in stateful mode against the live server: it follows the OpenAPI links of docs/openapi.json
(submit -> read, update with the ETag, claim -> heartbeat/release/resolve with the claim token, start -> finish a run,
create -> revoke a token) and checks every answer for server errors and conformance to the document.
"""

from __future__ import annotations

import collections
import json
import time
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import FlakyStrategyDefinition
from hypothesis.stateful import Bundle, rule
from schemathesis.generation.stateful.state_machine import StepInput

from tests.api.test_api_openapi import CHECKS, DOCUMENT

SCENARIOS = 40  # per round
STEPS = 8
MIN_CALLS = 600  # rounds run until this many calls were made ...
BUDGET_S = 30  # ... or this much time passed


# One backend is enough to walk the links; the stateless run in test_api_openapi.py covers both.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_stateful_scenarios_follow_the_links_without_server_errors_or_schema_violations(live):
    # An admin token whose name nothing generated will match, so a generated revoke cannot lock the run out.
    secret = live.add_token(f"stateful-{uuid.uuid4().hex}", "admin")
    schema = schemathesis.openapi.from_dict(json.loads(DOCUMENT.read_text(encoding="utf-8")))
    base = schema.as_state_machine()
    calls: list[tuple[str, int]] = []

    submit = schema["/api/bug-reports"]["POST"]

    class Workflow(base):  # type: ignore[misc, valid-type]
        # Schemathesis starts scenarios only at operations it guesses will succeed on random data; it reads the
        # submission's trace_id/request_id/assignee_id as references to resources nothing creates, so it never
        # starts at the one operation that creates reports. Submitting is a root here; its answer lands in the
        # bundle its links read from.
        @rule(target=Bundle("catch_all"), case=submit.as_strategy())
        def submit_a_report(self, case):
            self.recorder.record_case(case=case)
            return self._step(StepInput.initial(case))

        def get_call_kwargs(self, case):
            return {"base_url": live.url, "headers": {"Authorization": f"Bearer {secret}"}, "timeout": 10}

        def before_call(self, case):
            if isinstance(case.body, dict) and isinstance(case.body.get("wait"), int | float):
                case.body["wait"] = min(case.body["wait"], 0.05)  # long-polls would eat the time budget

        def after_call(self, response, case):
            super().after_call(response, case)
            calls.append((case.operation.label, response.status_code))

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # Collected, not raised: Hypothesis would replay a failing scenario, and against a server whose data
            # moved on the replay draws differently (FlakyStrategyDefinition) and hides the real failure.
            try:
                case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)
            except AssertionError as exc:  # schemathesis' FailureGroup is an AssertionError too
                failures.append(f"{case.operation.label} -> {response.status_code}: {exc}\n{case.as_curl_command()}")

    failures: list[str] = []
    deadline = time.monotonic() + BUDGET_S
    rounds = 0
    while len(calls) < MIN_CALLS and time.monotonic() < deadline:
        # Hypothesis derives a derandomized run's seed from the machine's name: each round explores anew.
        machine = type(f"Workflow{rounds}", (Workflow,), {})
        rounds += 1
        try:
            machine.run(
                settings=settings(
                    max_examples=SCENARIOS,
                    stateful_step_count=STEPS,
                    deadline=None,
                    derandomize=True,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.generate],
                )
            )
        except FlakyStrategyDefinition:
            # The data links draw from is the server's, which every scenario changes, so a replayed prefix can
            # find other bundles and Hypothesis stops the round. The scenarios run so far stand.
            continue
    print(f"stateful: {len(calls)} calls in {rounds} rounds", sorted(collections.Counter(calls).items()))
    assert not failures, "\n\n".join(failures[:10])
    linked = {label for label, status in calls if status < 400}
    assert any(label.startswith("PATCH") or "claim" in label for label in linked), sorted(linked)
    assert len(calls) >= SCENARIOS
