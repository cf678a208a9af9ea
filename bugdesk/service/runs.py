"""Agent runs: one attempt by an agent at a report, with its outcome, commits and log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from bugdesk import validate
from bugdesk.clock import utcnow
from bugdesk.config import Settings
from bugdesk.errors import NotFound, ValidationError
from bugdesk.models import AgentRun, BugReport
from bugdesk.service._base import get_report, record_event, require_actor, transaction

OUTCOMES = ("succeeded", "failed", "abandoned")


def start_agent_run(ref: Any, agent: str, *, now: datetime | None = None) -> AgentRun:
    agent = require_actor(agent)
    now = now or utcnow()
    with transaction():
        report = get_report(ref)
        run = AgentRun.create(report=report.id, agent=agent, started_at=now, outcome="running")
        record_event(report, "agent_run", agent, at=now, data={"run_id": str(run.id), "outcome": "running"})
        return run


def finish_agent_run(
    run_id: Any,
    outcome: str,
    *,
    commits: Any = None,
    log: str | None = None,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> AgentRun:
    """Close a run. After ``max_agent_attempts`` failed runs the report is flagged `needs_human`."""
    settings = settings or Settings()
    outcome = validate.choice(outcome, "outcome", OUTCOMES)
    commit_list = validate.commits(commits)
    log = validate.clean_text(log, "log")
    now = now or utcnow()
    try:
        run_key = uuid.UUID(str(run_id))
    except ValueError:
        raise ValidationError(f"{str(run_id)[:80]!r} is not an agent run id (a UUID)", field="id") from None
    with transaction():
        run = AgentRun.get_or_none(AgentRun.id == run_key)
        if run is None:
            raise NotFound(f"no agent run {run_id}")
        if run.outcome != "running":
            raise ValidationError(f"agent run {run_id} already finished as {run.outcome}", field="outcome")
        run.outcome, run.finished_at, run.commits, run.log = outcome, now, commit_list or None, log
        run.save()
        record_event(
            run.report_id,
            "agent_run",
            run.agent,
            at=now,
            body=log and log[:2000],
            data={"run_id": str(run.id), "outcome": outcome, "commits": commit_list},
        )
        if outcome == "failed":
            _flag_if_exhausted(run.report_id, settings, now)
        return run


def _flag_if_exhausted(report_id: uuid.UUID, settings: Settings, now: datetime) -> None:
    failures = AgentRun.select().where((AgentRun.report == report_id) & (AgentRun.outcome == "failed")).count()
    if failures < settings.max_agent_attempts:
        return
    flagged = (
        BugReport.update(needs_human=True, updated_at=now, version=BugReport.version + 1)
        .where((BugReport.id == report_id) & (BugReport.needs_human == False))  # noqa: E712
        .execute()
    )
    if flagged:
        record_event(
            report_id,
            "flagged",
            "system",
            at=now,
            body=f"{failures} failed agent runs: handed to a human until triaged again",
            data={"needs_human": True, "failed_runs": failures},
        )
