"""The MCP tools: one per agent action, each a thin call into the service layer or the shared queries.

Descriptions are written for a model (what the tool does, when to use it, what it returns);
argument types reuse the HTTP API's constrained types, so a value the API refuses is refused
here too, before any database work. Reads need the `read` scope, changes need `write`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import Field

from bugdesk import payload, queries, service
from bugdesk.api.schemas import (
    CloseReason,
    Commits,
    NoteKind,
    Outcome,
    Severity,
    Status,
    StatusFilter,
    TimestampFilter,
)
from bugdesk.errors import BugdeskError, QueueEmpty, ValidationError
from bugdesk.lifecycle import SEVERITIES
from bugdesk.mcp.server import Caller, Desk, json_result, problem
from bugdesk.models import BugReport
from bugdesk.service import runs

F = TypeVar("F", bound=Callable[..., Any])

# ---------------------------------------------------------------------------------------- argument types

Number = Annotated[int, Field(ge=1, description="The report's short number: 42 for report #42.")]
ClaimToken = Annotated[
    str, Field(min_length=1, max_length=128, description="The claim_token returned by claim_next or claim_report.")
]
LeaseSeconds = Annotated[
    int | None,
    Field(ge=5, le=86_400, description="Lease length in seconds; the server default (usually 600) when omitted."),
]
Text = Annotated[str, Field(max_length=1_000_000)]
Short = Annotated[str, Field(max_length=255)]
Limit = Annotated[int, Field(ge=1, le=100, description="Reports per page (1-100).")]
Cursor = Annotated[
    str | None,
    Field(max_length=512, description="next_cursor from the previous page, unchanged; omit for the first page."),
]
Sort = Literal[queries.SORTS]  # type: ignore[valid-type]

READ = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
# Resolving or moving a report can close it: destructive in the MCP sense (not merely additive).
CHANGE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

# The compact row of a listing: enough to choose a report; get_report has everything.
_SUMMARY = (
    "number", "id", "title", "severity", "status", "category", "component", "environment", "exception_type",
    "created_at", "sla_due_at", "needs_human", "duplicate_of_id", "claim", "version",
)  # fmt: skip

# Long-poll of claim_next, as the HTTP API does it: a quick first retry, then backing off.
POLL_FIRST_S = 0.05
POLL_MAX_S = 0.5


def summary(report: BugReport) -> dict[str, Any]:
    data = payload.report_json(report)
    return {name: data[name] for name in _SUMMARY}


def _page(flt: queries.ReportFilter, sort: str, limit: int, cursor: str | None) -> dict[str, Any]:
    page = queries.list_reports(flt, sort=sort, limit=limit, cursor=cursor)
    return {"items": [summary(r) for r in page.items], "count": len(page.items), "next_cursor": page.next_cursor}


def _granted(claim: service.Claim) -> dict[str, Any]:
    return {
        "claimed": True,
        "claim_token": claim.token,
        "expires_at": payload.iso(claim.expires_at),
        "report": payload.report_payload(claim.report),
    }


def _adder(server: MCPServer) -> Callable[[ToolAnnotations], Callable[[F], F]]:
    """``@tool(annotations)``: registers with the docstring, dedented, as the description the model reads."""

    def tool(annotations: ToolAnnotations) -> Callable[[F], F]:
        def add(fn: F) -> F:
            server.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), annotations=annotations)
            return fn

        return add

    return tool


def register(server: MCPServer, desk: Desk) -> None:
    """Add every tool to ``server``."""
    settings = desk.settings
    tool = _adder(server)

    # ----------------------------------------------------------------------------------------- reading

    @tool(READ)
    async def list_reports(
        ctx: Context,
        status: Annotated[
            tuple[StatusFilter, ...],
            Field(description="Statuses to include; `open` = not resolved/closed, `done` = resolved or closed."),
        ] = (),
        severity: Annotated[tuple[Severity, ...], Field(description="Severities to include (any when empty).")] = (),
        category: Annotated[
            tuple[Short, ...], Field(description="Categories, e.g. `crash`, `ui` (any when empty).")
        ] = (),
        component: Annotated[
            tuple[Short, ...], Field(description="Components, e.g. `payments` (any when empty).")
        ] = (),
        assignee_id: Annotated[Short | None, Field(description="Only reports assigned to this person.")] = None,
        claimed_by: Annotated[Short | None, Field(description="Only reports claimed by this agent.")] = None,
        needs_human: Annotated[
            bool | None, Field(description="true: only reports flagged for a human after failed agent runs.")
        ] = None,
        sla_breached: Annotated[bool, Field(description="Only open reports past their SLA due time.")] = False,
        trace_id: Annotated[str | None, Field(max_length=64, description="W3C trace id (32 hex).")] = None,
        request_id: Annotated[
            str | None, Field(max_length=128, description="X-Request-ID of the failing request.")
        ] = None,
        release_sha: Annotated[str | None, Field(max_length=64, description="Commit SHA of the release.")] = None,
        fingerprint: Annotated[str | None, Field(max_length=64, description="Dedup fingerprint.")] = None,
        created_after: Annotated[TimestampFilter | None, Field(description="ISO 8601; inclusive.")] = None,
        created_before: Annotated[TimestampFilter | None, Field(description="ISO 8601; exclusive.")] = None,
        include_duplicates: Annotated[
            bool, Field(description="Also list duplicates (normally only canonical reports are listed).")
        ] = False,
        duplicates_of: Annotated[
            int | None, Field(ge=1, description="Only the duplicates grouped under this report number.")
        ] = None,
        sort: Annotated[Sort, Field(description="Order; `-` means descending.")] = "-created_at",
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """List bug reports matching filters, one page at a time.

        Use it to survey the backlog or find reports by telemetry (trace_id, request_id, release_sha) or
        fingerprint. Returns {items, count, next_cursor}: each item is a compact summary (number, title,
        severity, status, category, component, created_at, sla_due_at, claim, version, ...); call
        get_report for the full report. Pass next_cursor back (with the same filters and sort) for the
        next page; it is null on the last page. To claim work, prefer claim_next.
        """

        def work(caller: Caller) -> dict[str, Any]:
            flt = queries.ReportFilter(
                status=list(status), severity=list(severity), category=list(category), component=list(component),
                assignee_id=assignee_id, claimed_by=claimed_by, needs_human=needs_human, sla_breached=sla_breached,
                trace_id=trace_id, request_id=request_id, release_sha=release_sha, fingerprint=fingerprint,
                created_after=created_after, created_before=created_before,
                include_duplicates=include_duplicates,
                duplicates_of=payload.load_report(duplicates_of).id if duplicates_of else None,
            )  # fmt: skip
            return _page(flt, sort, limit, cursor)

        return await desk.tool(ctx, "read", work)

    @tool(READ)
    async def search_reports(
        ctx: Context,
        query: Annotated[
            str,
            Field(min_length=1, max_length=200, description="Words that must all appear (title or description)."),
        ],
        status: Annotated[
            tuple[StatusFilter, ...], Field(description='Statuses to include, e.g. ["open"] (any when empty).')
        ] = (),
        severity: Annotated[tuple[Severity, ...], Field(description="Severities to include (any when empty).")] = (),
        include_duplicates: Annotated[bool, Field(description="Also search duplicates.")] = False,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """Full-text search over report titles and descriptions (every word must match), newest first.

        Use it to find earlier reports about the same symptom, error message or function before fixing,
        or to check whether a bug was already reported. Returns {items, count, next_cursor} with compact
        summaries, like list_reports.
        """

        def work(caller: Caller) -> dict[str, Any]:
            flt = queries.ReportFilter(
                q=query, status=list(status), severity=list(severity), include_duplicates=include_duplicates
            )
            return _page(flt, "-created_at", limit, cursor)

        return await desk.tool(ctx, "read", work)

    @tool(READ)
    async def get_report(
        ctx: Context,
        number: Number,
        events: Annotated[int, Field(ge=0, le=500, description="How many recent events to include.")] = 20,
    ) -> CallToolResult:
        """Everything needed to work on one report.

        Returns the report (title, description, severity, status, stacktrace, component, route,
        environment, telemetry: trace_id, request_id, release_sha), its `version` (send it to
        update_report), `claim` (who holds it until when), `dedup` (the canonical report, occurrence
        counts and the signature that grouped it), `repo_path_hints` (in-app files from the stack trace,
        innermost first: start reading there), recent `events` (the timeline) and `agent_runs` (earlier
        attempts and their outcomes: do not repeat a failed approach).
        """
        return await desk.tool(
            ctx, "read", lambda caller: payload.report_payload(payload.load_report(number), events=events)
        )

    @tool(READ)
    async def status_summary(ctx: Context) -> CallToolResult:
        """The desk at a glance: report counts by status and severity (canonical reports), open total,
        SLA breaches by severity, the oldest open report, active claims, reports needing a human and
        the number of duplicates. Use it to judge the backlog before choosing what to work on."""
        return await desk.tool(ctx, "read", lambda caller: queries.status_summary())

    # ------------------------------------------------------------------------------------------ claims

    @tool(WRITE)
    async def claim_next(
        ctx: Context,
        severities: Annotated[
            list[Severity] | None, Field(max_length=4, description="Only these severities (all when omitted).")
        ] = None,
        categories: Annotated[list[Short] | None, Field(max_length=50, description="Only these categories.")] = None,
        components: Annotated[list[Short] | None, Field(max_length=50, description="Only these components.")] = None,
        environment: Annotated[str | None, Field(max_length=64, description="Only this environment.")] = None,
        skip_failed: Annotated[bool, Field(description="Skip reports you already failed on (false retries).")] = True,
        lease_seconds: LeaseSeconds = None,
        wait_seconds: Annotated[
            float, Field(ge=0, le=30, description="Wait up to this long for a report to turn up (long-poll).")
        ] = 0,
    ) -> CallToolResult:
        """Claim the most urgent unclaimed report (highest severity, then earliest SLA due) that fits the filters.

        Use it to pick up work. The report moves to in_progress and is leased to you: nobody else can
        claim it until the lease ends. Returns {claimed: true, claim_token, expires_at, report} where
        report is the full get_report payload. Keep claim_token: heartbeat, release_claim,
        resolve_report and update_report need it. Call heartbeat before expires_at or the report goes
        back to the queue. When nothing fits, returns {claimed: false, detail} (not an error).
        """
        queue = service.QueueFilter(
            severities=list(severities or SEVERITIES),
            categories=categories,
            components=components,
            environment=environment,
            skip_failed=skip_failed,
        )

        def attempt(caller: Caller) -> dict[str, Any]:
            try:
                claim = service.claim_next(caller.actor, queue, lease_seconds=lease_seconds, settings=settings)
            except QueueEmpty as exc:
                # An empty queue is an ordinary answer (the HTTP API's 204), not a failure.
                return {"claimed": False, "detail": exc.message}
            return _granted(claim)

        # Polls without holding a transaction (or a worker thread) between attempts, like the HTTP API.
        deadline = time.monotonic() + wait_seconds
        delay = POLL_FIRST_S
        try:
            while True:
                answer = await desk.run(ctx, "write", attempt)
                remaining = deadline - time.monotonic()
                if answer["claimed"] or remaining <= 0:
                    return json_result(answer)
                await anyio.sleep(min(delay, remaining))
                delay = min(delay * 2, POLL_MAX_S)
        except BugdeskError as exc:
            return json_result(problem(exc), is_error=True)

    @tool(WRITE)
    async def claim_report(ctx: Context, number: Number, lease_seconds: LeaseSeconds = None) -> CallToolResult:
        """Claim one specific report by number (lease it to you).

        Use it when you were asked to fix a given report. Fails if someone else holds a live claim
        (the error names who and until when); claiming your own report again renews it with a new token.
        Returns {claimed: true, claim_token, expires_at, report} like claim_next.
        """
        return await desk.tool(
            ctx,
            "write",
            lambda caller: _granted(
                service.claim(number, caller.actor, lease_seconds=lease_seconds, settings=settings)
            ),
        )

    @tool(WRITE)
    async def heartbeat(
        ctx: Context, number: Number, claim_token: ClaimToken, lease_seconds: LeaseSeconds = None
    ) -> CallToolResult:
        """Extend the lease of your claim; call it while you work, well before expires_at.

        Returns {number, expires_at}. An error means the claim is lost (token wrong, or the lease already
        ended and the report went back to the queue): claim the report again before changing it.
        """

        def work(caller: Caller) -> dict[str, Any]:
            expires = service.heartbeat(number, claim_token, lease_seconds=lease_seconds, settings=settings)
            return {"number": number, "expires_at": payload.iso(expires)}

        return await desk.tool(ctx, "write", work)

    @tool(WRITE)
    async def release_claim(
        ctx: Context,
        number: Number,
        claim_token: ClaimToken,
        reason: Annotated[Text | None, Field(description="Why you give it back; recorded on the timeline.")] = None,
    ) -> CallToolResult:
        """Give a claimed report back to the queue without resolving it (an in_progress report returns to triaged).

        Use it when you cannot or should not fix the report; say why in `reason`. Returns the report.
        """
        return await desk.tool(
            ctx, "write", lambda caller: payload.report_json(service.release(number, claim_token, reason=reason))
        )

    # ------------------------------------------------------------------------------------------ changes

    @tool(WRITE)
    async def add_note(
        ctx: Context,
        number: Number,
        body: Annotated[str, Field(min_length=1, max_length=1_000_000, description="The text (markdown is fine).")],
        kind: Annotated[
            NoteKind,
            Field(description="`note` for a finding meant for people, `agent_log` for a step of your work."),
        ] = "note",
        data: Annotated[
            dict[str, Any] | None, Field(description="Optional structured data stored with the entry.")
        ] = None,
    ) -> CallToolResult:
        """Add a note or an agent log entry to a report's timeline; the report itself does not change.

        Use it to record what you found (root cause, files involved, what you tried) so people and later
        agents can follow your reasoning. Needs no claim or version. Returns {event_id, number, kind}.
        """

        def work(caller: Caller) -> dict[str, Any]:
            event_id = service.add_note(number, caller.actor, body, kind=kind, data=data)
            return {"event_id": event_id, "number": number, "kind": kind}

        return await desk.tool(ctx, "write", work)

    @tool(CHANGE)
    async def update_report(
        ctx: Context,
        number: Number,
        version: Annotated[
            int, Field(ge=1, description="The report's `version` as you last read it; a newer one makes this fail.")
        ],
        status: Annotated[Status | None, Field(description="Move the report to this status.")] = None,
        note: Annotated[Text | None, Field(description="Why the status changes; recorded on the timeline.")] = None,
        close_reason: Annotated[
            CloseReason | None, Field(description="With status `closed`: done, wont_fix or duplicate.")
        ] = None,
        claim_token: Annotated[
            str | None, Field(max_length=128, description="Your claim token, required while the report is claimed.")
        ] = None,
        severity: Annotated[Severity | None, Field(description="Triage: new severity (recomputes the SLA).")] = None,
        category: Annotated[str | None, Field(max_length=64, description="Triage: new category.")] = None,
        assignee_id: Annotated[Short | None, Field(description='Triage: assign to this person; "" unassigns.')] = None,
        component: Annotated[Short | None, Field(description="Triage: new component.")] = None,
    ) -> CallToolResult:
        """Change a report: either triage fields (severity, category, assignee_id, component) or its status.

        Send the `version` you read (from get_report or a previous answer); if the report changed since,
        this fails with a stale-version error: re-read and retry. Triage fields and a status change go in
        separate calls. Status moves follow the lifecycle new -> triaged -> in_progress ->
        awaiting_verification -> resolved -> closed; an illegal move fails and names the allowed targets.
        To resolve with notes and commits prefer resolve_report. Returns the updated report (new version).
        """

        def work(caller: Caller) -> dict[str, Any]:
            triage = {
                name: value
                for name, value in (
                    ("severity", severity), ("category", category), ("assignee_id", assignee_id),
                    ("component", component),
                )
                if value is not None
            }  # fmt: skip
            move = {
                name
                for name, value in (
                    ("status", status), ("note", note), ("close_reason", close_reason), ("claim_token", claim_token)
                )
                if value is not None
            }  # fmt: skip
            if not triage and not move:
                raise ValidationError("nothing to change: send a status or triage fields", field="status")
            if triage and move:
                raise ValidationError(
                    f"send triage fields ({', '.join(sorted(triage))}) and a status change "
                    f"({', '.join(sorted(move))}) in separate calls",
                    field=sorted(move)[0],
                )
            if triage:
                report = service.triage(number, caller.actor, version=version, settings=settings, **triage)
            elif status is None:
                raise ValidationError(f"{', '.join(sorted(move))} only go with a status change", field="status")
            elif status == "resolved":
                report = service.resolve(number, caller.actor, notes=note, claim_token=claim_token, version=version)
            else:
                report = service.move(
                    number, status, caller.actor, version=version, note=note, close_reason=close_reason,
                    claim_token=claim_token,
                )  # fmt: skip
            return payload.report_json(report)

        return await desk.tool(ctx, "write", work)

    @tool(CHANGE)
    async def resolve_report(
        ctx: Context,
        number: Number,
        resolution_notes: Annotated[
            Text | None, Field(description="What was wrong and how it was fixed (markdown is fine).")
        ] = None,
        commits: Annotated[Commits | None, Field(description="SHAs (7-64 hex) of the commits with the fix.")] = None,
        claim_token: Annotated[
            str | None, Field(max_length=128, description="Your claim token; required while the report is claimed.")
        ] = None,
        version: Annotated[
            int | None, Field(ge=1, description="Optional: the version you read; a newer one makes this fail.")
        ] = None,
        fixed_in_release: Annotated[
            str | None, Field(max_length=64, description="The release (version or SHA) that ships the fix.")
        ] = None,
    ) -> CallToolResult:
        """Mark a report resolved with resolution notes and the commit SHAs of the fix; this ends your claim.

        Use it once the fix is committed. A claimed report needs its claim_token (a lost lease fails: claim
        it again). Returns the updated report with status `resolved`.
        """

        def work(caller: Caller) -> dict[str, Any]:
            report = service.resolve(
                number, caller.actor, notes=resolution_notes, commits=commits, claim_token=claim_token,
                version=version, fixed_in_release=fixed_in_release,
            )  # fmt: skip
            return payload.report_json(report)

        return await desk.tool(ctx, "write", work)

    # --------------------------------------------------------------------------------------- agent runs

    @tool(WRITE)
    async def start_agent_run(ctx: Context, number: Number) -> CallToolResult:
        """Record that you start an attempt at fixing a report; call finish_agent_run with its outcome at the end.

        Runs let people see what agents tried; after repeated failed runs a report is handed to a human.
        Returns the run: {id, report_id, agent, started_at, outcome: "running", ...}; keep its `id`.
        """
        return await desk.tool(
            ctx, "write", lambda caller: payload.run_json(runs.start_agent_run(number, caller.actor))
        )

    @tool(WRITE)
    async def finish_agent_run(
        ctx: Context,
        run_id: Annotated[str, Field(min_length=1, max_length=36, description="The `id` from start_agent_run.")],
        outcome: Annotated[Outcome, Field(description="succeeded, failed or abandoned.")],
        commits: Annotated[Commits | None, Field(description="SHAs of commits the run produced.")] = None,
        log: Annotated[Text | None, Field(description="A summary of what the run did and found.")] = None,
    ) -> CallToolResult:
        """Close an agent run with its outcome, commits and a log summary.

        Call it after resolve_report (succeeded) or release_claim (failed/abandoned). Returns the run.
        """

        def work(caller: Caller) -> dict[str, Any]:
            run = runs.finish_agent_run(run_id, outcome, commits=commits, log=log, settings=settings)
            return payload.run_json(run)

        return await desk.tool(ctx, "write", work)


__all__ = ["register", "summary"]
