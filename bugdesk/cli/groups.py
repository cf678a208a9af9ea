"""Commands for grouping and telemetry: merge, split, regroup, enrich and the releases timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from bugdesk import fingerprint
from bugdesk.cli._app import JsonOption, app, console, database, fail, print_json, progress_bar
from bugdesk.errors import BugdeskError
from bugdesk.service import dedup, enrich, regroup, releases

release_app = typer.Typer(
    help="The releases timeline used to date reports and judge regressions.", no_args_is_help=True
)
app.add_typer(release_app, name="release")

Actor = Annotated[str, typer.Option("--actor", help="Who is making the change (recorded on the events).")]


@app.command()
def merge(
    source: Annotated[str, typer.Argument(help="Report (number or UUID) whose group is folded in.")],
    into: Annotated[str, typer.Argument(help="Report (number or UUID) whose group absorbs it.")],
    actor: Actor = "cli",
) -> None:
    """Merge the group of SOURCE into the group of INTO (duplicates and counts move in one step).

    Example: bugdesk merge 42 17
    """
    with database():
        try:
            target = dedup.merge(source, into, actor)
        except BugdeskError as exc:
            fail(str(exc))
        group = dedup.group_occurrences(target)
    console.print(f"merged into #{target.number}: {group['occurrences']} occurrences in the group")


@app.command()
def split(
    report: Annotated[str, typer.Argument(help="A duplicate report (number or UUID) to take out of its group.")],
    actor: Actor = "cli",
) -> None:
    """Take REPORT out of its group; it becomes its own canonical and never re-merges silently.

    Example: bugdesk split 57
    """
    with database():
        try:
            split_out = dedup.split(report, actor)
        except BugdeskError as exc:
            fail(str(exc))
    console.print(f"#{split_out.number} is now its own canonical report")


@app.command("regroup")
def regroup_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    algorithm: Annotated[str, typer.Option(help="Fingerprint algorithm to replay.")] = fingerprint.CURRENT,
    examples: Annotated[int, typer.Option(help="Examples to show per kind of change.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Replay a fingerprint algorithm over stored reports: which groups would split or merge.

    Without --dry-run the change is applied in checkpointed batches, with an event per moved report.

    Example: bugdesk regroup --dry-run --algorithm v1
    """
    with database():
        from bugdesk.models import BugReport

        try:
            with progress_bar("fingerprinting", BugReport.select().count()) as advance:
                plan = regroup.plan_regroup(algorithm, progress=advance)
            summary = plan.summary(examples)
            if not dry_run:
                with progress_bar("applying", len(plan.moves) + len(plan.hashes)) as advance:
                    summary["moved"] = regroup.apply_regroup(plan, progress=advance)
        except BugdeskError as exc:
            fail(str(exc))
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{summary['reports']} reports: {summary['current_groups']} groups now, {summary['new_groups']} "
        f"with {algorithm}; {summary['groups_that_split']} would split, {summary['groups_that_merge']} would merge, "
        f"{summary['reports_that_move']} reports move",
        highlight=False,
    )
    for item in summary["split_examples"]:
        console.print(f"  split  #{item['canonical']} {item['title']!r} -> {item['into']}", highlight=False)
    for item in summary["merge_examples"]:
        console.print(f"  merge  {item['from']} -> #{item['canonical']} {item['title']!r}", highlight=False)
    if not dry_run:
        console.print(f"applied: {summary['moved']} reports moved")


@app.command("enrich")
def enrich_command(
    recompute: Annotated[str | None, typer.Option(help="Recompute fingerprints with this algorithm (e.g. v1).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fill what reports lack: release from the deploy timeline, component, exception type, repo path hints,
    fingerprints. Idempotent and resumable; each enriched report gets an `enriched` event.

    Example: bugdesk enrich
    """
    with database():
        try:
            with progress_bar("enriching", enrich.total_reports()) as advance:
                stats = enrich.enrich(recompute_algorithm=recompute, progress=advance)
        except BugdeskError as exc:
            fail(str(exc))
    result = {"scanned": stats.scanned, "enriched": stats.enriched, "filled": stats.filled}
    if as_json:
        print_json(result)
    else:
        filled = ", ".join(f"{k} {v}" for k, v in sorted(stats.filled.items())) or "nothing"
        console.print(f"scanned {stats.scanned}, enriched {stats.enriched}: {filled}", highlight=False)


@release_app.command("add")
def release_add(
    sha: Annotated[str, typer.Argument(help="Commit SHA of the release.")],
    version: Annotated[str | None, typer.Option(help="Version name, e.g. 2.4.0.")] = None,
    env: Annotated[str, typer.Option("--env", help="Environment it was deployed to.")] = "production",
    at: Annotated[datetime | None, typer.Option("--at", help="Deploy time (ISO 8601, UTC if no offset).")] = None,
) -> None:
    """Record a deploy of SHA to an environment (recording it again updates it).

    Example: bugdesk release add 3f2c1e9 --version 2.4.0 --env staging --at 2025-03-01T12:00:00Z
    """
    with database():
        try:
            release = releases.add_release(sha, version=version, environment=env, deployed_at=at)
        except BugdeskError as exc:
            fail(str(exc))
    console.print(f"release {release.sha[:12]} ({release.version or 'no version'}) in {release.environment} "
                  f"from {release.deployed_at.isoformat()}", highlight=False)  # fmt: skip


@release_app.command("ls")
def release_ls(as_json: JsonOption = False) -> None:
    """List the releases timeline, newest first.

    Example: bugdesk release ls --json
    """
    from bugdesk.models import Release

    with database():
        rows = [
            {"sha": r.sha, "version": r.version, "environment": r.environment, "deployed_at": r.deployed_at}
            for r in Release.select().order_by(Release.deployed_at.desc())
        ]
    if as_json:
        print_json(rows)
        return
    for r in rows:
        console.print(f"{r['deployed_at'].isoformat()}  {r['environment']:<12} {r['sha'][:12]}  {r['version'] or ''}")
