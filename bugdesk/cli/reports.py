"""Report commands: ``ls`` and ``show`` to look, ``triage``/``move``/``note``/``resolve``/``reopen`` to act, ``check``.

Each command parses its options, makes one call to ``bugdesk.queries`` or ``bugdesk.service`` and
prints the outcome: rich tables on a terminal, plain tab-separated text when piped, JSON with
``--json``. A change the service refuses (an illegal move, someone else's claim, a stale version)
exits 1 with the service's explanation; bad input, a database or a configuration problem exits 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from bugdesk import queries
from bugdesk.cli._app import JsonOption, app, console, database, err_console, fail, print_json, state
from bugdesk.clock import utcnow
from bugdesk.errors import BugdeskError, ClaimConflict, ValidationError
from bugdesk.lifecycle import CLOSE_REASONS, SEVERITIES, STATUSES, is_open
from bugdesk.models import BugReport
from bugdesk.queries import ReportFilter
from bugdesk.tui.format import SEVERITY_SHORT, SEVERITY_STYLE, age, describe_event, sla_left, when

# -- shared options ---------------------------------------------------------------------------


def _complete_status(incomplete: str) -> list[str]:
    return [s for s in (*STATUSES, "open", "done") if s.startswith(incomplete)]


def _complete_severity(incomplete: str) -> list[str]:
    return [s for s in SEVERITIES if s.startswith(incomplete)]


def _complete_sort(incomplete: str) -> list[str]:
    return [s for s in queries.SORTS if s.startswith(incomplete)]


def _complete_reason(incomplete: str) -> list[str]:
    return [s for s in CLOSE_REASONS if s.startswith(incomplete)]


Ref = Annotated[str, typer.Argument(help="The report: its short number (42 or #42) or its UUID.", show_default=False)]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="BUGDESK_ACTOR",
        help="Who is making the change, recorded on the event [default: your login name]",
        show_default=False,
    ),
]
IfVersion = Annotated[
    int | None,
    typer.Option("--if-version", help="Refuse the change unless the report is still at this version (from `show`)."),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Override an agent's live claim on the report (recorded as you).")
]


def _actor(actor: str | None) -> str:
    from bugdesk.tui.store import default_actor

    return actor or default_actor()


@contextmanager
def _refusals() -> Iterator[None]:
    """Service errors become their message on stderr: exit 2 for bad input, 1 for a refused change."""
    try:
        yield
    except ValidationError as exc:
        fail(str(exc), code=2)
    except ClaimConflict as exc:
        fail(f"{exc}; a person can override the claim with --force", code=1)
    except BugdeskError as exc:
        fail(str(exc), code=1)


def _plain(values: list[Any]) -> None:
    """One tab-separated line on stdout (piped output: easy to cut, sort and grep)."""
    sys.stdout.write("\t".join("" if v is None else str(v) for v in values) + "\n")


# -- ls ---------------------------------------------------------------------------------------


@app.command("ls")
def list_command(
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Status, `open` or `done`; repeat or comma-separate for several.",
            autocompletion=_complete_status,
        ),
    ] = None,
    severity: Annotated[
        list[str] | None,
        typer.Option(
            "--severity", help="critical, high, medium or low; repeatable.", autocompletion=_complete_severity
        ),
    ] = None,
    category: Annotated[list[str] | None, typer.Option("--category", help="Category; repeatable.")] = None,
    component: Annotated[list[str] | None, typer.Option("--component", help="Component; repeatable.")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Assigned to this person.")] = None,
    claimed_by: Annotated[str | None, typer.Option("--claimed-by", help="Claimed by this agent.")] = None,
    breached: Annotated[bool, typer.Option("--breached", help="Only open reports past their SLA due time.")] = False,
    needs_human: Annotated[
        bool, typer.Option("--needs-human", help="Only reports agents gave up on (flagged for a person).")
    ] = False,
    trace_id: Annotated[str | None, typer.Option("--trace-id", help="Reports with this trace id.")] = None,
    request_id: Annotated[str | None, typer.Option("--request-id", help="Reports with this request id.")] = None,
    release: Annotated[str | None, typer.Option("--release", help="Reports seen in this release (SHA).")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Words that must all appear.")] = None,
    duplicates: Annotated[bool, typer.Option("--duplicates", help="Include duplicate reports.")] = False,
    sort: Annotated[
        str, typer.Option("--sort", help=f"One of: {', '.join(queries.SORTS)}.", autocompletion=_complete_sort)
    ] = "-created_at",
    limit: Annotated[int, typer.Option("--limit", "-n", help=f"Reports per page (1-{queries.MAX_LIMIT}).")] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="Continue after this page (from `next_cursor`).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List reports, newest first, one page at a time (canonical reports unless --duplicates).

    The next page's cursor goes to stderr (or `next_cursor` with --json).

    Example: bugdesk ls --status open --severity critical,high --breached --sort sla_due_at
    """
    flt = ReportFilter(
        status=status or [],
        severity=severity or [],
        category=category or [],
        component=component or [],
        assignee_id=assignee,
        claimed_by=claimed_by,
        sla_breached=breached,
        needs_human=True if needs_human else None,
        trace_id=trace_id,
        request_id=request_id,
        release_sha=release,
        q=search,
        include_duplicates=duplicates,
    )
    from bugdesk.tui.store import occurrences_by_canonical

    with database(), _refusals():
        now = utcnow()
        page = queries.list_reports(flt, sort=sort, limit=limit, cursor=cursor, now=now)
        counts = occurrences_by_canonical([r.id for r in page.items if r.duplicate_of_id is None])
    if as_json:
        from bugdesk.payload import report_json

        items = [
            {**report_json(r), "occurrences": counts.get(r.id, 1 if r.duplicate_of_id is None else 0)}
            for r in page.items
        ]
        print_json({"items": items, "count": len(items), "next_cursor": page.next_cursor})
        return
    if console.is_terminal:
        table = Table(box=None, header_style="bold dim", pad_edge=False)
        for name, justify in (
            ("sev", "left"),
            ("#", "right"),
            ("title", "left"),
            ("status", "left"),
            ("age", "right"),
            ("SLA", "right"),
            ("occ", "right"),
            ("assignee", "left"),
            ("claimed by", "left"),
        ):
            table.add_column(name, justify=justify, no_wrap=name != "title", overflow="ellipsis")
        for r in page.items:
            sla, late = sla_left(r.sla_due_at, now, is_open=is_open(r.status))
            table.add_row(
                Text(SEVERITY_SHORT[r.severity], style=SEVERITY_STYLE[r.severity]),
                Text(f"#{r.number}", style="bold"),
                Text(r.title, overflow="ellipsis", no_wrap=True),
                r.status,
                age(r.created_at, now),
                Text(sla, style="bold white on dark_red" if late else ""),
                "" if r.duplicate_of_id else str(counts.get(r.id, 1)),
                r.assignee_id or "",
                _live_claim(r, now) or "",
            )
        console.print(table if page.items else Text("no reports match", style="dim"))
    else:
        _plain(["number", "severity", "status", "age", "sla", "occurrences", "assignee", "claimed_by", "title"])
        for r in page.items:
            sla, _ = sla_left(r.sla_due_at, now, is_open=is_open(r.status))
            _plain(
                [
                    r.number,
                    r.severity,
                    r.status,
                    age(r.created_at, now),
                    sla,
                    "" if r.duplicate_of_id else counts.get(r.id, 1),
                    r.assignee_id,
                    _live_claim(r, now),
                    r.title,
                ]
            )
    if page.next_cursor:
        err_console.print(f"more: --cursor {page.next_cursor}", highlight=False, style="dim", soft_wrap=True)


def _live_claim(report: BugReport, now) -> str | None:  # type: ignore[no-untyped-def]
    live = report.claimed_by and report.claim_expires_at and report.claim_expires_at > now
    return report.claimed_by if live else None


# -- show -------------------------------------------------------------------------------------


@app.command()
def show(
    ref: Ref,
    events: Annotated[int, typer.Option("--events", help="How many of the latest events to show.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """Show one report: its fields, telemetry, stack trace, dedup group with duplicates, and event timeline.

    Example: bugdesk show 42
    """
    from bugdesk.tui.store import Store

    with database(), _refusals():
        detail = Store(state.settings).detail(ref)
        if as_json:
            from bugdesk.payload import report_payload

            payload = report_payload(detail.report, events=events)
            payload["duplicates"] = [
                {"number": d.number, "title": d.title, "status": d.status, "created_at": d.created_at.isoformat()}
                for d in detail.duplicates
            ]
            payload["duplicate_count"] = detail.duplicate_count
            print_json(payload)
            return
        timeline = list(reversed(detail.events[:events]))
    r = detail.report
    now = utcnow()
    sla, late = sla_left(r.sla_due_at, now, is_open=is_open(r.status))
    fields: list[tuple[str, Any]] = [
        ("status", r.status + (f" ({r.close_reason})" if r.close_reason else "")),
        ("severity", r.severity),
        ("category", r.category),
        ("component", r.component),
        ("assignee", r.assignee_id),
        (
            "claimed by",
            f"{r.claimed_by} until {when(r.claim_expires_at)} ({'live' if detail.claim_live else 'expired'})"
            if r.claimed_by
            else None,
        ),
        ("created", f"{when(r.created_at)} ({age(r.created_at, now)} ago)"),
        (
            "SLA due",
            f"{when(r.sla_due_at)} ({'breached ' + sla.lstrip('-') if late else sla + ' left'})"
            if is_open(r.status)
            else when(r.sla_due_at),
        ),
        ("updated", when(r.updated_at)),
        ("resolved", r.resolved_at and when(r.resolved_at)),
        ("source", r.source),
        ("reporter", r.reporter_id),
        ("needs human", "yes" if r.needs_human else None),
        ("version", r.version),
        ("id", str(r.id)),
        ("trace id", r.trace_id),
        ("request id", r.request_id),
        ("release", r.release_sha),
        ("environment", r.environment),
        ("route", r.route),
        ("exception", r.exception_type),
        ("fixed in", r.fixed_in_release),
        ("commits", ", ".join(r.resolution_commits or []) or None),
        ("resolution", r.resolution_notes),
    ]
    group_lines = [
        f"duplicate of #{detail.canonical.number} {detail.canonical.title}" if detail.canonical else "canonical report",
        f"{detail.occurrences} occurrences over {detail.fingerprints} fingerprint(s), "
        f"{detail.duplicate_count} duplicate report(s); first seen {when(detail.first_seen_at)}, "
        f"last seen {when(detail.last_seen_at)}",
    ]
    if not console.is_terminal:
        _plain(["number", r.number])
        _plain(["title", r.title])
        for name, value in fields:
            if value not in (None, ""):
                _plain([name, value])
        for line in group_lines:
            _plain(["group", line])
        for d in detail.duplicates:
            _plain(["duplicate", f"#{d.number}", d.status, when(d.created_at), d.title])
        for e in timeline:
            _plain(["event", when(e.created_at), e.kind, e.actor, _event_text(e)])
        if r.description:
            sys.stdout.write("\ndescription:\n" + r.description.rstrip() + "\n")
        if r.stacktrace:
            sys.stdout.write("\nstack trace:\n" + r.stacktrace.rstrip() + "\n")
        return
    head = Text()
    head.append(f"#{r.number} ", style="bold")
    head.append(SEVERITY_SHORT[r.severity], style=SEVERITY_STYLE[r.severity])
    head.append(f"  {r.title}", style="bold")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True)
    grid.add_column()
    for name, value in fields:
        if value not in (None, ""):
            grid.add_row(name, Text(str(value), style="bold red" if name == "SLA due" and late else ""))
    parts: list[Any] = [head, grid]
    if r.description:
        parts += [Text("\ndescription", style="bold underline"), Text(r.description)]
    if r.stacktrace:
        lexer = "pytb" if "Traceback (most recent call last)" in r.stacktrace else "text"
        parts += [
            Text("\nstack trace", style="bold underline"),
            Syntax(r.stacktrace.rstrip(), lexer, word_wrap=True, background_color="default"),
        ]
    parts += [Text("\ndedup group", style="bold underline"), *(Text(line) for line in group_lines)]
    if detail.signature:
        parts.append(Text(detail.signature, style="italic dim"))
    if detail.duplicates:
        dups = Table(box=None, header_style="bold dim", pad_edge=False)
        for name in ("#", "status", "created", "title"):
            dups.add_column(name, no_wrap=True, overflow="ellipsis")
        for d in detail.duplicates[:20]:
            dups.add_row(f"#{d.number}", d.status, when(d.created_at), d.title)
        parts.append(dups)
    parts.append(Text(f"\ntimeline (latest {len(timeline)})", style="bold underline"))
    tl = Table(box=None, show_header=False, pad_edge=False)
    for _ in range(4):
        tl.add_column()
    for e in timeline:
        tl.add_row(Text(when(e.created_at), style="dim"), Text(e.kind, style="bold"), e.actor, _event_text(e))
    parts.append(tl)
    console.print(Group(*parts))


def _event_text(event: Any) -> str:
    return describe_event(event).plain


# -- triage commands ----------------------------------------------------------------------------


def _report_done(report: BugReport, message: str, as_json: bool) -> None:
    if as_json:
        from bugdesk.payload import report_json

        print_json(report_json(report))
    else:
        console.print(f"{message} (version {report.version})", highlight=False, soft_wrap=True)


@app.command()
def triage(
    ref: Ref,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity",
            help="critical, high, medium or low (the SLA is recomputed).",
            autocompletion=_complete_severity,
        ),
    ] = None,
    category: Annotated[str | None, typer.Option("--category", help="A category such as crash or ui.")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Assign to this person.")] = None,
    unassign: Annotated[bool, typer.Option("--unassign", help="Remove the assignee.")] = False,
    component: Annotated[str | None, typer.Option("--component", help="The component it belongs to.")] = None,
    if_version: IfVersion = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set severity, category, assignee or component; a `new` report becomes `triaged`.

    Example: bugdesk triage 42 --severity high --category crash --assignee alice
    """
    from bugdesk import service

    if assignee and unassign:
        fail("give --assignee or --unassign, not both")
    extra: dict[str, Any] = {}
    if assignee or unassign:
        extra["assignee_id"] = None if unassign else assignee
    with database(), _refusals():
        report = service.triage(
            ref,
            _actor(actor),
            version=if_version,
            severity=severity,
            category=category,
            component=component,
            settings=state.settings,
            **extra,
        )
    _report_done(
        report,
        f"#{report.number} {report.status}: severity {report.severity}, category {report.category}, "
        f"assignee {report.assignee_id or '-'}",
        as_json,
    )


@app.command()
def move(
    ref: Ref,
    status: Annotated[
        str,
        typer.Argument(
            help=f"Target status: {', '.join(STATUSES)}.", autocompletion=_complete_status, show_default=False
        ),
    ],
    note: Annotated[str | None, typer.Option("--note", help="Why; recorded on the event.")] = None,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="When closing: done, wont_fix or duplicate.", autocompletion=_complete_reason),
    ] = None,
    force: ForceOption = False,
    if_version: IfVersion = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move a report to another status; an illegal move is refused with the allowed targets.

    Example: bugdesk move 42 in_progress --note "looking into it"
    """
    from bugdesk import service

    with database(), _refusals():
        report = service.move(
            ref, status, _actor(actor), version=if_version, note=note, close_reason=reason, force=force
        )
    _report_done(report, f"#{report.number} is now {report.status}", as_json)


@app.command()
def note(
    ref: Ref,
    text: Annotated[str, typer.Argument(help="The note; `-` reads it from stdin.", show_default=False)],
    actor: ActorOption = None,
) -> None:
    """Add a note to a report's timeline (the report itself does not change).

    Example: bugdesk note 42 "Reproduced on staging with the customer's data"
    """
    from bugdesk import service

    body = sys.stdin.read() if text == "-" else text
    with database(), _refusals():
        event_id = service.add_note(ref, _actor(actor), body)
    console.print(f"note added (event {event_id})", highlight=False, soft_wrap=True)


@app.command()
def resolve(
    ref: Ref,
    notes: Annotated[str | None, typer.Option("--notes", help="What was wrong and what fixed it.")] = None,
    commit: Annotated[list[str] | None, typer.Option("--commit", help="A fixing commit SHA; repeatable.")] = None,
    fixed_in: Annotated[str | None, typer.Option("--fixed-in", help="The release that carries the fix.")] = None,
    force: ForceOption = False,
    if_version: IfVersion = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve a report with notes and commits; reports from later releases count as regressions.

    Example: bugdesk resolve 42 --notes "guard against empty carts" --commit 3f2a9c1
    """
    from bugdesk import service

    with database(), _refusals():
        report = service.resolve(
            ref,
            _actor(actor),
            notes=notes,
            commits=commit or None,
            fixed_in_release=fixed_in,
            version=if_version,
            force=force,
        )
    _report_done(report, f"#{report.number} resolved", as_json)


@app.command()
def reopen(
    ref: Ref,
    reason: Annotated[str | None, typer.Option("--reason", help="Why it is back.")] = None,
    if_version: IfVersion = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reopen a resolved or closed report; it goes back to `triaged`.

    Example: bugdesk reopen 42 --reason "still failing in 2.4.1"
    """
    from bugdesk import service

    with database(), _refusals():
        report = service.reopen(ref, _actor(actor), reason=reason, version=if_version)
    _report_done(report, f"#{report.number} reopened as {report.status}", as_json)


# -- check ------------------------------------------------------------------------------------


@app.command()
def check(
    backlog_threshold: Annotated[
        int | None,
        typer.Option(
            "--backlog-threshold",
            help="Most open reports allowed to be older than --backlog-age [default: setting backlog_threshold, 100]",
            show_default=False,
        ),
    ] = None,
    backlog_age: Annotated[
        float | None,
        typer.Option(
            "--backlog-age",
            help="Hours after which an open report counts as backlog [default: setting backlog_max_age_hours, 24]",
            show_default=False,
        ),
    ] = None,
    breach_threshold: Annotated[
        int | None,
        typer.Option(
            "--breach-threshold",
            help="Most open reports allowed past their SLA [default: setting sla_breach_threshold, 0]",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """For cron and monitoring: exit 1, saying why, when the backlog or the SLA breaches exceed their thresholds.

    Backlog: open canonical reports older than --backlog-age hours; more than --backlog-threshold fails.
    SLA: open canonical reports past their SLA due time; more than --breach-threshold fails. Thresholds
    default to the settings (bugdesk.toml, BUGDESK_BACKLOG_THRESHOLD, BUGDESK_BACKLOG_MAX_AGE_HOURS,
    BUGDESK_SLA_BREACH_THRESHOLD). Exit codes: 0 fine, 1 a threshold is exceeded, 2 the check could not run.

    Example: bugdesk check --backlog-threshold 50 --backlog-age 48 --breach-threshold 5 || notify-oncall
    """
    settings = state.settings
    max_backlog = settings.backlog_threshold if backlog_threshold is None else backlog_threshold
    age_hours = settings.backlog_max_age_hours if backlog_age is None else backlog_age
    max_breaches = settings.sla_breach_threshold if breach_threshold is None else breach_threshold
    with database():
        now = utcnow()
        cutoff = now - timedelta(hours=age_hours)
        backlog = queries.count_reports(ReportFilter(status=["open"], created_before=cutoff), now=now)
        breaches = queries.count_reports(ReportFilter(status=["open"], sla_breached=True), now=now)
        oldest = queries.list_reports(ReportFilter(status=["open"]), sort="created_at", limit=1, now=now).items
        worst = queries.list_reports(
            ReportFilter(status=["open"], sla_breached=True), sort="sla_due_at", limit=1, now=now
        ).items
    checks = [
        {
            "name": "backlog",
            "value": backlog,
            "threshold": max_backlog,
            "max_age_hours": age_hours,
            "ok": backlog <= max_backlog,
            "message": f"{backlog} open report(s) older than {age_hours:g}h (threshold {max_backlog})"
            + (f"; oldest #{oldest[0].number}, {age(oldest[0].created_at, now)} old" if oldest else ""),
        },
        {
            "name": "sla_breaches",
            "value": breaches,
            "threshold": max_breaches,
            "ok": breaches <= max_breaches,
            "message": f"{breaches} open report(s) past their SLA (threshold {max_breaches})"
            + (
                f"; most overdue #{worst[0].number} by {sla_left(worst[0].sla_due_at, now)[0].lstrip('-')}"
                if worst
                else ""
            ),
        },
    ]
    ok = all(c["ok"] for c in checks)
    if as_json:
        print_json({"ok": ok, "checked_at": now.isoformat(), "checks": checks})
    else:
        for c in checks:
            console.print(
                f"{'OK  ' if c['ok'] else 'FAIL'} {c['name']}: {c['message']}", highlight=False, soft_wrap=True
            )
    if not ok:
        raise typer.Exit(1)
