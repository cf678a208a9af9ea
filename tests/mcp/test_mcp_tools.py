"""The MCP tools, resources and prompt through the SDK's client, in process, on SQLite and PostgreSQL.

The transports are covered by test_mcp_stdio.py and test_mcp_http.py; here each tool's rules:
the same service calls, errors and answers as the HTTP API.
"""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace

import anyio
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation
from mcplive import REQUIRED_TOOLS, data, fails, ok

from bugdesk.clock import utcnow
from bugdesk.mcp import client_name_caller
from bugdesk.mcp.resources import report_markdown
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service import claim

AGENT = "tool-agent"


def run(server, body) -> None:
    """``await body(client)`` with an SDK client connected in process as ``AGENT``."""

    async def main() -> None:
        async with Client(server, client_info=Implementation(name=AGENT, version="1")) as client:
            await body(client)

    anyio.run(main)


def test_every_tool_is_listed_with_a_description_and_documented_typed_arguments(server):
    async def body(client):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) >= REQUIRED_TOOLS
        for tool in tools.values():
            assert len(tool.description) > 80 and "\n        " not in tool.description, tool.name
            for name, prop in tool.input_schema.get("properties", {}).items():
                assert prop.get("description"), f"{tool.name}.{name} is undocumented"
                assert "type" in prop or "anyOf" in prop, f"{tool.name}.{name} is untyped"
        assert tools["get_report"].input_schema["properties"]["number"]["type"] == "integer"
        assert set(tools["resolve_report"].input_schema["required"]) == {"number"}
        assert set(tools["update_report"].input_schema["required"]) == {"number", "version"}
        assert tools["get_report"].annotations.read_only_hint is True
        assert tools["claim_next"].annotations.read_only_hint is False

    run(server, body)


def test_list_filters_and_pages_with_a_cursor(server, make_report):
    numbers = [make_report(severity="high" if i % 2 else "low").number for i in range(5)]

    async def body(client):
        first = await ok(client, "list_reports", severity=["high", "low"], sort="number", limit=2)
        assert [item["number"] for item in first["items"]] == numbers[:2]
        assert set(first["items"][0]) >= {"number", "title", "severity", "status", "version", "claim"}
        assert "stacktrace" not in first["items"][0]  # compact rows; get_report has everything
        second = await ok(client, "list_reports", severity=["high", "low"], sort="number", limit=2,
                          cursor=first["next_cursor"])  # fmt: skip
        assert [item["number"] for item in second["items"]] == numbers[2:4]
        high = await ok(client, "list_reports", severity=["high"], status=["open"], limit=50)
        assert {item["severity"] for item in high["items"]} == {"high"} and high["next_cursor"] is None
        bad = await fails(client, "list_reports", cursor="not-a-cursor")
        assert "cursor is not valid" in data(bad)["detail"]

    run(server, body)


def test_search_matches_every_word_of_title_or_description(server, make_report):
    make_report(title="checkout crashes on empty basket", description="KeyError in pricing")
    make_report(title="login page slow")

    async def body(client):
        found = await ok(client, "search_reports", query="basket pricing")
        assert [item["title"] for item in found["items"]] == ["checkout crashes on empty basket"]
        assert (await ok(client, "search_reports", query="basket login"))["items"] == []

    run(server, body)


def test_claim_note_resolve_changes_the_report_and_records_events_as_the_client(server, make_report):
    report = make_report(severity="critical")

    async def body(client):
        granted = await ok(client, "claim_next", severities=["critical"])
        assert granted["claimed"] and granted["report"]["number"] == report.number
        assert granted["report"]["claim"]["claimed_by"] == AGENT and granted["claim_token"].startswith("ct_")
        assert {"dedup", "repo_path_hints", "events", "agent_runs"} <= set(granted["report"])
        beat = await ok(client, "heartbeat", number=report.number, claim_token=granted["claim_token"])
        assert beat["expires_at"] >= granted["expires_at"]
        note = await ok(client, "add_note", number=report.number, body="root cause: stale cache", kind="agent_log")
        assert note["kind"] == "agent_log"
        resolved = await ok(client, "resolve_report", number=report.number, claim_token=granted["claim_token"],
                            resolution_notes="cache invalidated", commits=["abc1234"])  # fmt: skip
        assert resolved["status"] == "resolved" and resolved["claim"] is None

    run(server, body)
    stored = BugReport.get_by_id(report.id)
    assert (stored.status, stored.resolution_commits, stored.claimed_by) == ("resolved", ["abc1234"], None)
    events = [(e.kind, e.actor) for e in BugReportEvent.select().where(BugReportEvent.report == report.id)]
    assert [e for e in events if e[1] == AGENT] == [
        ("claimed", AGENT), ("heartbeat", AGENT), ("agent_log", AGENT), ("resolved", AGENT)
    ]  # fmt: skip


def test_errors_are_tool_errors_with_the_apis_problem_members(server, make_report):
    report = make_report()

    async def body(client):
        granted = await ok(client, "claim_report", number=report.number)
        wrong = data(await fails(client, "resolve_report", number=report.number, claim_token="ct_wrong"))
        assert wrong["type"] == "urn:bugdesk:problem:claim-conflict" and wrong["status"] == 409
        assert "claim token does not match" in wrong["detail"]
        stale = data(await fails(client, "update_report", number=report.number, version=1, severity="low"))
        assert stale["status"] == 412 and stale["current_version"] == 2 and "re-read" in stale["detail"]
        illegal = data(await fails(client, "update_report", number=report.number, version=2, status="new",
                                   claim_token=granted["claim_token"]))  # fmt: skip
        assert illegal["status"] == 409 and "awaiting_verification" in illegal["allowed"]
        missing = data(await fails(client, "get_report", number=999_999))
        assert (missing["status"], missing["detail"]) == (404, "no bug report 999999")
        both = data(
            await fails(client, "update_report", number=report.number, version=2, severity="low", status="closed")
        )
        assert "separate calls" in both["detail"]
        # The server keeps answering after every refusal.
        assert (await ok(client, "get_report", number=report.number))["version"] == 2

    run(server, body)


def test_bad_arguments_are_tool_errors_not_protocol_failures(server, make_report):
    make_report()

    async def body(client):
        for tool, arguments in (
            ("get_report", {"number": "forty-two"}),
            ("get_report", {"number": 0}),
            ("get_report", {}),
            ("list_reports", {"severity": ["urgent"]}),
            ("resolve_report", {"number": 1, "commits": ["not a sha"]}),
            ("claim_next", {"lease_seconds": 1}),
            ("finish_agent_run", {"run_id": "nope", "outcome": "succeeded"}),
            ("no_such_tool", {}),
        ):
            result = await client.call_tool(tool, arguments)
            assert result.is_error, (tool, arguments)
        assert (await ok(client, "status_summary"))["open"] == 1

    run(server, body)


def test_a_lost_lease_fails_heartbeat_and_resolve(server, make_report):
    report = make_report()
    # A lease that ended a minute ago (the service takes the time as an argument).
    old = claim(report.number, AGENT, lease_seconds=5, now=utcnow() - timedelta(minutes=1))

    async def body(client):
        lost = data(await fails(client, "heartbeat", number=report.number, claim_token=old.token))
        assert "expired" in lost["detail"] and "claim it again" in lost["detail"]
        # Claiming again gives a fresh token; the old one is worthless.
        regained = await ok(client, "claim_report", number=report.number)
        assert regained["claim_token"] != old.token
        released = await ok(client, "release_claim", number=report.number, claim_token=regained["claim_token"],
                            reason="not reproducible here")  # fmt: skip
        assert released["status"] == "triaged" and released["claim"] is None

    run(server, body)


def test_claim_next_on_an_empty_queue_answers_claimed_false_after_waiting(server):
    async def body(client):
        start = time.monotonic()
        empty = await ok(client, "claim_next", wait_seconds=0.3)
        assert empty == {"claimed": False, "detail": empty["detail"]} and "queue" in empty["detail"]
        assert time.monotonic() - start >= 0.3

    run(server, body)


def test_update_triages_and_moves_with_versions(server, make_report):
    report = make_report(severity="low")

    async def body(client):
        triaged = await ok(client, "update_report", number=report.number, version=1, severity="high",
                           assignee_id="dana")  # fmt: skip
        assert (triaged["status"], triaged["severity"], triaged["version"]) == ("triaged", "high", 2)
        unassigned = await ok(client, "update_report", number=report.number, version=2, assignee_id="")
        assert unassigned["assignee_id"] is None
        closed = await ok(client, "update_report", number=report.number, version=3, status="closed",
                          close_reason="wont_fix", note="by design")  # fmt: skip
        assert (closed["status"], closed["close_reason"]) == ("closed", "wont_fix")

    run(server, body)


def test_agent_runs_start_and_finish(server, make_report):
    report = make_report()

    async def body(client):
        started = await ok(client, "start_agent_run", number=report.number)
        assert (started["agent"], started["outcome"]) == (AGENT, "running")
        finished = await ok(client, "finish_agent_run", run_id=started["id"], outcome="failed", log="no repro")
        assert finished["outcome"] == "failed"
        again = data(await fails(client, "finish_agent_run", run_id=started["id"], outcome="succeeded"))
        assert "already finished" in again["detail"]
        payload = await ok(client, "get_report", number=report.number)
        assert payload["attempts"]["failed"] == 1

    run(server, body)


def test_report_resource_is_markdown_and_status_is_json(server, make_report):
    report = make_report(
        title="boom in charge()",
        stacktrace='Traceback (most recent call last):\n  File "/srv/app/payments/charge.py", line 9, in charge\n'
        "    total = prices[key]\nKeyError: 'sku'",
    )

    async def body(client):
        templates = (await client.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["bugdesk://reports/{number}"]
        text = (await client.read_resource(f"bugdesk://reports/{report.number}")).contents[0].text
        assert text.startswith(f"# #{report.number} boom in charge()")
        for part in ("| severity | high |", "## Stack trace", "KeyError: 'sku'", "## Telemetry", "## Timeline",
                     "payments/charge.py:9", "**created** by tester"):  # fmt: skip
            assert part in text, part
        status = (await client.read_resource("bugdesk://status")).contents[0]
        assert status.mime_type == "application/json" and '"open": 1' in status.text
        with pytest.raises(MCPError, match="no bug report 4242"):
            await client.read_resource("bugdesk://reports/4242")

    run(server, body)


def test_markdown_fences_survive_backticks_in_a_stack_trace():
    payload = {"number": 1, "title": "t", "severity": "low", "status": "new", "stacktrace": "a ``` b ```` c"}
    text = report_markdown(payload)
    assert "`````text\na ``` b ```` c\n`````" in text


def test_fix_bug_prompt_frames_claim_investigate_note_resolve_with_the_report_attached(server, make_report):
    report = make_report(title="double charge on retry")

    async def body(client):
        prompts = (await client.list_prompts()).prompts
        assert [(p.name, [a.name for a in p.arguments]) for p in prompts] == [("fix_bug", ["number"])]
        result = await client.get_prompt("fix_bug", {"number": str(report.number)})
        steps = result.messages[0].content.text
        order = [steps.index(word) for word in ("claim_report", "add_note", "resolve_report", "release_claim")]
        assert order == sorted(order) and "double charge on retry" in steps
        attached = result.messages[1].content.resource
        assert str(attached.uri) == f"bugdesk://reports/{report.number}" and "# #" in attached.text
        with pytest.raises(MCPError, match="no bug report 999"):
            await client.get_prompt("fix_bug", {"number": "999"})

    run(server, body)


def test_the_stdio_actor_is_the_client_name_or_mcp():
    def ctx(client_info):
        params = SimpleNamespace(client_info=client_info) if client_info is not None else None
        return SimpleNamespace(request_context=SimpleNamespace(session=SimpleNamespace(client_params=params)))

    assert client_name_caller(ctx(Implementation(name="claude-code", version="1"))).actor == "claude-code"
    assert client_name_caller(ctx(Implementation(name="  ", version="1"))).actor == "mcp"
    assert client_name_caller(ctx(None)).actor == "mcp"
