"""Random operation sequences keep the lifecycle invariants (hypothesis state machine)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from bugdesk import errors, lifecycle, service
from bugdesk.clock import utcnow
from bugdesk.models import BugReport, BugReportEvent


class LifecycleMachine(RuleBasedStateMachine):
    """One report, driven by any mix of service calls, legal or not."""

    @initialize()
    def create(self):
        word = "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(14))
        self.report = service.create_report({"title": f"crash in {word}"}, "tester").report
        self.token = None
        self.clock = utcnow()
        self.versions = [self.report.version]
        self.events = self._event_count()

    def _event_count(self) -> int:
        return BugReportEvent.select().where(BugReportEvent.report == self.report.id).count()

    def _stored(self) -> BugReport:
        return BugReport.get_by_id(self.report.id)

    def _attempt(self, fn, *args, **kwargs) -> bool:
        """Run one operation; whether it changed state must match whether an event was written."""
        before_version, before_events = self._stored().version, self._event_count()
        self.clock += timedelta(seconds=1)
        try:
            fn(*args, now=self.clock, **kwargs)
            ok = True
        except errors.BugdeskError:
            ok = False
        stored = self._stored()
        if ok:
            assert self._event_count() == before_events + 1, "one event per change"
        else:
            assert self._event_count() == before_events, "a refused operation writes nothing"
            assert stored.version == before_version
        self.versions.append(stored.version)
        return ok

    @rule(to_status=st.sampled_from(lifecycle.STATUSES), stale=st.booleans())
    def move(self, to_status, stale):
        version = self._stored().version - (1 if stale else 0)
        self._attempt(service.move, self.report.id, to_status, "human", version=version, force=True)

    @rule(severity=st.sampled_from(lifecycle.SEVERITIES))
    def triage(self, severity):
        stored = self._stored()
        if stored.severity == severity and stored.status != "new" and not stored.needs_human:
            return  # nothing would change, so no event is expected
        self._attempt(service.triage, self.report.id, "human", version=stored.version, severity=severity)

    @rule()
    def claim(self):
        before = self._stored().version
        self.clock += timedelta(seconds=1)
        try:
            self.token = service.claim(self.report.id, "agent", now=self.clock).token
        except errors.ClaimConflict:
            assert self._stored().version == before
        self.versions.append(self._stored().version)

    @rule()
    def resolve(self):
        self._attempt(service.resolve, self.report.id, "agent", claim_token=self.token)

    @rule()
    def release(self):
        self._attempt(service.release, self.report.id, self.token or "ct_none")

    @rule()
    def reopen(self):
        self._attempt(service.reopen, self.report.id, "human")

    @rule()
    def note(self):
        self._attempt(service.add_note, self.report.id, "human", "a note")

    @invariant()
    def status_is_legal_and_resolved_at_matches(self):
        stored = self._stored()
        assert stored.status in lifecycle.STATUSES
        fixed = stored.status == "resolved" or (stored.status == "closed" and stored.close_reason == "done")
        assert (stored.resolved_at is not None) == fixed
        if stored.claimed_by is not None:
            assert stored.status in ("in_progress", "awaiting_verification")

    @invariant()
    def versions_never_go_back(self):
        assert all(b >= a for a, b in zip(self.versions, self.versions[1:], strict=False))


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
def test_random_operation_sequences_keep_the_invariants(db):
    run_state_machine_as_test(
        LifecycleMachine,
        settings=settings(
            max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
