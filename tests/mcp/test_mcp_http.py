"""The Streamable HTTP endpoint at /mcp of a live API server: bearer tokens, scopes, actors, races."""

from __future__ import annotations

import random

import anyio
import httpx
import pytest
from mcplive import REQUIRED_TOOLS, data, fails, http_client, ok, serve

from bugdesk.db import database
from bugdesk.mcp.http import McpHttpApp, mcp_http_app
from bugdesk.models import BugReport, BugReportEvent
from bugdesk.service import create_report, tokens

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def new_reports(count: int, severity: str = "high") -> list[int]:
    """``count`` canonical reports (titles differ in letters, not digits, so dedup keeps them apart)."""
    with database.connection_context():
        return [
            create_report({"title": f"http report {word()}", "severity": severity}, "tester").report.number
            for _ in range(count)
        ]


def word() -> str:
    return "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(12))


def test_http_without_a_valid_token_is_refused_like_the_api(live_mcp):
    refused = httpx.post(live_mcp.url, json=INITIALIZE, headers=HEADERS)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Bearer realm="bugdesk"'
    assert refused.headers["content-type"] == "application/problem+json"
    assert "Authorization: Bearer" in refused.json()["detail"]
    bad = httpx.post(live_mcp.url, json=INITIALIZE, headers={**HEADERS, "Authorization": "Bearer bd_wrong"})
    assert (bad.status_code, bad.json()["detail"]) == (401, "invalid or revoked token")
    ingest = httpx.post(
        live_mcp.url, json=INITIALIZE, headers={**HEADERS, "Authorization": f"Bearer {live_mcp.secrets['ingest']}"}
    )
    assert ingest.status_code == 403 and "lacks the 'read' scope" in ingest.json()["detail"]

    async def main():
        with pytest.raises(Exception):  # noqa: B017  (the SDK's error type for an HTTP 401 is not public)
            async with http_client(live_mcp.url, None) as client:
                await client.list_tools()

    anyio.run(main)


def test_a_read_only_token_reads_but_every_write_tool_is_refused(live_mcp):
    (number,) = new_reports(1)

    async def main():
        async with http_client(live_mcp.url, live_mcp.secrets["reader"]) as client:
            assert (await ok(client, "get_report", number=number))["number"] == number
            assert (await ok(client, "status_summary"))["open"] == 1
            for tool, arguments in (
                ("claim_next", {}),
                ("claim_report", {"number": number}),
                ("add_note", {"number": number, "body": "hi"}),
                ("update_report", {"number": number, "version": 1, "severity": "low"}),
                ("resolve_report", {"number": number}),
                ("start_agent_run", {"number": number}),
            ):
                refused = data(await fails(client, tool, **arguments))
                assert refused["status"] == 403, tool
                assert refused["detail"] == "token 'reader' lacks the 'write' scope (it has: read)"

    anyio.run(main)
    with database.connection_context():
        assert BugReport.get(BugReport.number == number).version == 1


def test_http_flow_is_recorded_under_the_token_name_and_a_revoked_token_stops_at_once(live_mcp):
    (number,) = new_reports(1)

    async def main():
        async with http_client(live_mcp.url, live_mcp.secrets["fixer"]) as client:
            assert {tool.name for tool in (await client.list_tools()).tools} >= REQUIRED_TOOLS
            granted = await ok(client, "claim_report", number=number)
            await ok(client, "add_note", number=number, body="found the bug")
            stale = data(await fails(client, "update_report", number=number, version=1, severity="low"))
            assert stale["status"] == 412
            await fails(client, "release_claim", number=number, claim_token="ct_nope")
            await ok(client, "resolve_report", number=number, claim_token=granted["claim_token"], commits=["abcdef0"])
            text = (await client.read_resource(f"bugdesk://reports/{number}")).contents[0].text
            assert "**resolved** by fixer" in text
            with database.connection_context():
                tokens.revoke_token("fixer")
            with pytest.raises(Exception):  # noqa: B017  (the transport fails the call on the 401)
                await client.call_tool("status_summary", {})

    anyio.run(main)
    with database.connection_context():
        report = BugReport.get(BugReport.number == number)
        actors = {e.kind: e.actor for e in BugReportEvent.select().where(BugReportEvent.report == report.id)}
    assert report.status == "resolved"
    assert actors["claimed"] == actors["note"] == actors["resolved"] == "fixer"


def test_http_clients_racing_claim_next_never_get_the_same_report(live_mcp):
    expected = set(new_reports(16))
    won: dict[str, list[int]] = {"fixer": [], "other": []}

    ready = [anyio.Event() for _ in range(4)]

    async def racer(name: str, slot: int) -> None:
        async with http_client(live_mcp.url, live_mcp.secrets[name]) as client:
            ready[slot].set()
            for event in ready:  # every client is connected before any claims
                await event.wait()
            while (answer := await ok(client, "claim_next"))["claimed"]:
                won[name].append(answer["report"]["number"])

    async def main():
        async with anyio.create_task_group() as group:
            for slot in range(4):  # two clients per token: four concurrent claimers
                group.start_soon(racer, ("fixer", "other")[slot % 2], slot)

    anyio.run(main)
    every = won["fixer"] + won["other"]
    assert len(every) == len(set(every)) == len(expected) and set(every) == expected


def test_a_mounted_app_whose_lifespan_never_ran_says_so(mcp_settings):
    from fastapi import FastAPI

    app = FastAPI()
    app.mount("/mcp", mcp_http_app(mcp_settings))  # and no mcp_lifespan: the mistake this guards
    with serve(app) as base:
        answer = httpx.post(f"{base}/mcp/", json=INITIALIZE, headers=HEADERS)
    assert answer.status_code == 503 and "mcp_lifespan" in answer.json()["detail"]


def test_served_on_its_own_it_runs_its_lifespan_and_opens_the_database(mcp_settings):
    app = mcp_http_app(mcp_settings)
    assert isinstance(app, McpHttpApp)
    with serve(app) as base:
        with database.connection_context():
            secret = tokens.create_token("solo", "write")[1]
        (number,) = new_reports(1, "low")

        async def main():
            async with http_client(f"{base}/", secret) as client:
                assert (await ok(client, "claim_report", number=number))["report"]["claim"]["claimed_by"] == "solo"

        anyio.run(main)
