"""MCP resources (each report as markdown, the status summary) and the ``fix_bug`` prompt."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, EmbeddedResource, TextResourceContents
from pydantic import Field

from bugdesk import payload, queries
from bugdesk.errors import BugdeskError, NotFound
from bugdesk.mcp.server import Caller, Desk

REPORT_URI = "bugdesk://reports/{number}"
STATUS_URI = "bugdesk://status"

# Timeline entries longer than this are cut in the markdown (get_report has them whole).
_EVENT_BODY_MAX = 600


def _fence(text: str, lang: str = "") -> str:
    """``text`` in a code fence longer than any backtick run inside it, so a stack trace cannot break out."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def _row(name: str, value: Any) -> str | None:
    if value in (None, "", [], {}):
        return None
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return f"| {name} | {text} |"


def report_markdown(data: dict[str, Any]) -> str:
    """A report payload (``payload.report_payload``) as markdown: facts, description, stack trace, telemetry,
    dedup group, repo path hints, resolution, agent runs and the timeline."""
    claim = data.get("claim")
    status = data["status"] + (f" (claimed by {claim['claimed_by']} until {claim['expires_at']})" if claim else "")
    dedup = data.get("dedup") or {}
    merged = data.get("merged_into")
    facts = [
        _row("severity", data["severity"]),
        _row("status", status),
        _row("close reason", data.get("close_reason")),
        _row("category", data.get("category")),
        _row("component", data.get("component")),
        _row("route", data.get("route")),
        _row("environment", data.get("environment")),
        _row("source", data.get("source")),
        _row("assignee", data.get("assignee_id")),
        _row("created", data.get("created_at")),
        _row("SLA due", data.get("sla_due_at")),
        _row("needs a human", "yes" if data.get("needs_human") else None),
        _row("duplicate of", f"#{merged['number']}" if merged else None),
        _row("version", data.get("version")),
    ]
    parts = [f"# #{data['number']} {data['title']}", "", "| field | value |", "|---|---|"]
    parts += [row for row in facts if row]
    if data.get("description"):
        parts += ["", "## Description", "", data["description"].rstrip()]
    if data.get("stacktrace"):
        parts += ["", "## Stack trace", "", _fence(data["stacktrace"], "text")]
    telemetry = [
        ("exception type", data.get("exception_type")),
        ("trace id", data.get("trace_id")),
        ("request id", data.get("request_id")),
        ("release", data.get("release_sha") or (data.get("details") or {}).get("release")),
        ("fingerprint", data.get("fingerprint")),
    ]
    if any(value for _, value in telemetry):
        parts += ["", "## Telemetry", ""] + [f"- {name}: `{value}`" for name, value in telemetry if value]
    if dedup:
        canonical = dedup.get("canonical") or {}
        parts += [
            "",
            "## Dedup group",
            "",
            f"- canonical: #{canonical.get('number')}, {dedup.get('occurrences')} occurrence(s), "
            f"first seen {dedup.get('first_seen_at')}, last seen {dedup.get('last_seen_at')}",
        ]
        if dedup.get("signature"):
            parts.append(f"- signature ({dedup.get('kind')}, {dedup.get('algorithm')}): `{dedup['signature']}`")
    if data.get("repo_path_hints"):
        parts += ["", "## Repo path hints", ""] + [f"- `{hint}`" for hint in data["repo_path_hints"]]
    if data.get("resolution_notes") or data.get("resolution_commits"):
        parts += ["", "## Resolution", ""]
        if data.get("resolution_notes"):
            parts.append(data["resolution_notes"].rstrip())
        if data.get("resolution_commits"):
            parts.append("Commits: " + ", ".join(f"`{sha}`" for sha in data["resolution_commits"]))
    if data.get("agent_runs"):
        parts += ["", "## Agent runs", ""]
        for run in data["agent_runs"]:
            commits = ", ".join(run.get("commits") or [])
            parts.append(
                f"- {run['started_at']} {run['agent']}: {run['outcome']}" + (f" (commits {commits})" if commits else "")
            )
    if data.get("events"):
        parts += ["", "## Timeline", ""]
        for event in data["events"]:
            move = f" {event['from_status'] or '-'} -> {event['to_status']}" if event.get("to_status") else ""
            line = f"- {event['created_at']} **{event['kind']}** by {event['actor']}{move}"
            body = (event.get("body") or "").strip()
            if body:
                cut = body[:_EVENT_BODY_MAX] + (" …" if len(body) > _EVENT_BODY_MAX else "")
                line += ": " + cut.replace("\n", " ")
            parts.append(line)
    return "\n".join(parts) + "\n"


FIX_BUG_STEPS = """\
Fix bug report #{number} of bugdesk: "{title}" ({severity}, {status}). The report is attached.

Work through these steps with the bugdesk tools:

1. Claim it: call `claim_report` with number={number}. Keep the `claim_token` from the answer; every
   change below needs it. If someone else holds the claim, stop and say so. Then call `start_agent_run`
   with number={number} and keep the run `id`.
2. Investigate: read the stack trace, `repo_path_hints` (start with the innermost in-app file), the dedup
   signature and the telemetry (trace_id, request_id, release_sha). Check `agent_runs` and the timeline
   for earlier attempts and do not repeat a failed approach. `search_reports` finds related reports.
   Call `heartbeat` with your claim_token whenever less than a third of the lease is left.
3. Note what you found: `add_note` with kind="agent_log" for each step worth keeping (root cause, files,
   plan), so a person or the next agent can follow.
4. Fix it in the repository, run the tests, and commit.
5. Resolve: `resolve_report` with number={number}, your claim_token, resolution_notes (what was wrong, how
   it is fixed, how it was verified) and commits (the SHAs). Then `finish_agent_run` with
   outcome="succeeded" and the commits.

If you cannot fix it: `add_note` explaining why, `release_claim` with a reason, and `finish_agent_run` with
outcome="failed" (or "abandoned") and a log. A tool error is JSON whose `detail` says what to do: a stale
version means re-read with `get_report`; a lost lease means claim again before changing anything.
"""


def register(server: MCPServer, desk: Desk) -> None:
    """Add the report and status resources and the ``fix_bug`` prompt to ``server``."""

    def load(caller: Caller, number: int) -> dict[str, Any]:
        return payload.report_payload(payload.load_report(number), events=50)

    def parse_number(text: str) -> int:
        text = str(text).strip().lstrip("#")
        if not text.isdigit() or len(text) > 18:
            raise ResourceNotFoundError(f"{text[:40]!r} is not a report number: use bugdesk://reports/42")
        return int(text)

    @server.resource(
        REPORT_URI,
        name="report",
        title="Bug report",
        description="One bug report as markdown: facts, description, stack trace, telemetry, dedup group, "
        "repo path hints, agent runs and the timeline.",
        mime_type="text/markdown",
    )
    async def report_resource(number: str, ctx: Context) -> str:
        wanted = parse_number(number)
        try:
            data = await desk.run(ctx, "read", lambda caller: load(caller, wanted))
        except NotFound as exc:
            raise ResourceNotFoundError(exc.message) from exc
        except BugdeskError as exc:
            raise ResourceError(exc.message) from exc
        return report_markdown(data)

    @server.resource(
        STATUS_URI,
        name="status",
        title="Desk status",
        description="The status summary as JSON: counts by status and severity, SLA breaches, oldest open "
        "report, active claims.",
        mime_type="application/json",
    )
    async def status_resource() -> str:
        # A static resource gets no request context; over HTTP every request already passed the transport's
        # `read` check, and on stdio the caller is trusted, so no per-call scope check is needed here.
        try:
            summary = await desk.run(None, "read", lambda caller: queries.status_summary())
        except BugdeskError as exc:
            raise ResourceError(exc.message) from exc
        return json.dumps(summary, indent=2)

    @server.prompt(
        title="Fix a bug report",
        description="Fix one bug report end to end: claim it, investigate, note findings, fix, and resolve it "
        "with notes and commit SHAs (or release it with a reason). Attaches the report as markdown.",
    )
    async def fix_bug(
        number: Annotated[int, Field(ge=1, description="The report's number, e.g. 42.")], ctx: Context
    ) -> list[Message]:
        try:
            data = await desk.run(ctx, "read", lambda caller: load(caller, number))
        except BugdeskError as exc:
            # A protocol error keeps the actionable message (the SDK hides other exceptions' text).
            raise MCPError(code=INVALID_PARAMS, message=exc.message) from exc
        steps = FIX_BUG_STEPS.format(
            number=number, title=data["title"], severity=data["severity"], status=data["status"]
        )
        attachment = EmbeddedResource(
            type="resource",
            resource=TextResourceContents(
                uri=REPORT_URI.format(number=number), mime_type="text/markdown", text=report_markdown(data)
            ),
        )
        return [UserMessage(steps), UserMessage(attachment)]
