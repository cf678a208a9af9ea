"""examples/agent.py drains a queue against the live server: claim, read, log, resolve, record the run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from bugdesk import service
from bugdesk.models import AgentRun, BugReport, BugReportEvent

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("example_agent", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_agent_resolves_every_open_report_with_a_commit(live, new_report):
    for _ in range(3):
        service.create_report(new_report(), "seed")
    agent = _load_example()
    code = agent.main(
        ["--url", live.url, "--token", live.secrets["agent"], "--once", "--wait", "0", "--commit", "abc1234"]
    )
    assert code == 0
    reports = list(BugReport.select())
    assert {r.status for r in reports} == {"resolved"}
    assert all(r.resolution_commits == ["abc1234"] for r in reports)
    assert AgentRun.select().where(AgentRun.outcome == "succeeded").count() == 3
    assert BugReportEvent.select().where(BugReportEvent.kind == "agent_log").count() == 6
