"""`bugdesk mcp` as a real subprocess, driven by the SDK's stdio client, on SQLite and PostgreSQL."""

from __future__ import annotations

import anyio
from mcplive import REQUIRED_TOOLS, data, fails, ok, stdio_client

from bugdesk.models import BugReport, BugReportEvent


def test_stdio_lists_tools_and_a_claim_note_resolve_flow_is_recorded_as_the_client(db, db_url, make_report, tmp_path):
    report = make_report(severity="critical")
    other = make_report(severity="low")

    async def main():
        async with stdio_client(db_url, tmp_path, "stdio-fixer") as client:
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(tools) >= REQUIRED_TOOLS
            assert tools["claim_report"].input_schema["properties"]["number"]["type"] == "integer"

            granted = await ok(client, "claim_next")
            assert granted["report"]["number"] == report.number
            token = granted["claim_token"]
            await ok(client, "add_note", number=report.number, body="null price in the cart", kind="agent_log")

            # Refusals come back as tool errors and the server keeps going.
            wrong = data(await fails(client, "resolve_report", number=report.number, claim_token="ct_nope"))
            assert wrong["status"] == 409 and "claim token does not match" in wrong["detail"]
            stale = data(await fails(client, "update_report", number=other.number, version=7, severity="high"))
            assert stale["status"] == 412 and stale["current_version"] == 1
            await fails(client, "get_report", number="seven")
            unknown = data(await fails(client, "get_report", number=424242))
            assert unknown["detail"] == "no bug report 424242"

            resolved = await ok(client, "resolve_report", number=report.number, claim_token=token,
                                resolution_notes="guard against a null price", commits=["0a1b2c3d"])  # fmt: skip
            assert resolved["status"] == "resolved"

    anyio.run(main)
    stored = BugReport.get_by_id(report.id)
    assert (stored.status, stored.resolution_notes) == ("resolved", "guard against a null price")
    kinds = {e.kind: e.actor for e in BugReportEvent.select().where(BugReportEvent.report == report.id)}
    assert kinds["claimed"] == kinds["agent_log"] == kinds["resolved"] == "stdio-fixer"
    assert BugReport.get_by_id(other.id).version == 1  # the stale write changed nothing


def test_two_stdio_clients_racing_claim_next_never_get_the_same_report(db, db_url, make_report, tmp_path):
    expected = {make_report(severity="high").number for _ in range(12)}
    won: dict[str, list[int]] = {"racer-a": [], "racer-b": []}

    ready = {"racer-a": anyio.Event(), "racer-b": anyio.Event()}

    async def racer(name: str) -> None:
        # A legacy (initialize) and a 2026-era client: the actor comes from clientInfo either way.
        mode = "legacy" if name == "racer-a" else "auto"
        async with stdio_client(db_url, tmp_path, name, mode=mode) as client:
            ready[name].set()
            for event in ready.values():  # both processes are up before either claims
                await event.wait()
            while (answer := await ok(client, "claim_next"))["claimed"]:
                won[name].append(answer["report"]["number"])

    async def main():
        async with anyio.create_task_group() as group:
            group.start_soon(racer, "racer-a")
            group.start_soon(racer, "racer-b")

    anyio.run(main)
    a, b = won["racer-a"], won["racer-b"]
    assert not set(a) & set(b) and len(a) + len(b) == len(expected) and set(a) | set(b) == expected
    claimed_by = {r.number: r.claimed_by for r in BugReport.select()}
    assert all(claimed_by[n] == "racer-a" for n in a) and all(claimed_by[n] == "racer-b" for n in b)


def test_bugdesk_mcp_refuses_a_database_it_cannot_use_with_a_message_and_exit_code(tmp_path):
    from typer.testing import CliRunner

    from bugdesk.cli import app

    result = CliRunner().invoke(app, ["--db", "mysql://somewhere/bugs", "mcp"])
    assert result.exit_code == 2 and "unsupported database URL scheme 'mysql'" in result.output
