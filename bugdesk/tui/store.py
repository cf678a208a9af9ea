"""Provides the dashboard's data access: one thread that owns one connection, and plain rows for the widgets.

Peewee connections belong to the thread that opened them, and SQLite's ``PRAGMA
data_version`` only means something on one long-lived connection. So every read
and every service call of the dashboard runs on a single dedicated thread
(``Store.call`` hands work to it and awaits the result); the UI thread never
touches the database. Writes still go through ``bugdesk.service`` only.

No Textual here: this module is plain Python and is tested without a screen.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from peewee import SQL, fn

from bugdesk import db as dbmod
from bugdesk import queries, service
from bugdesk.clock import utcnow
from bugdesk.config import Settings
from bugdesk.lifecycle import STATUSES, allowed_targets, is_open
from bugdesk.models import BugReport, BugReportDedup, BugReportEvent
from bugdesk.queries import ReportFilter
from bugdesk.service import dedup
from bugdesk.service._base import get_report

T = TypeVar("T")

PAGE_SIZE = 100
"""Rows fetched per page: a few screens' worth, so scrolling rarely waits."""

SORTS: dict[str, str] = {
    "sla_due_at": "SLA due",
    "-created_at": "newest",
    "created_at": "oldest",
    "-updated_at": "recently updated",
    "-number": "number",
}
"""The sorts the dashboard offers (a subset of ``queries.SORTS``), with their labels, in cycling order."""

STATUS_CHOICES = ("open", "all", "done", *STATUSES)
"""What the status filter accepts: the open set, everything, resolved+closed, or one status."""


@dataclass(frozen=True)
class ListQuery:
    """What the report list shows: filters, search and sort. Immutable; change it with ``replace``."""

    status: str = "open"
    severity: str | None = None
    category: str | None = None
    assignee: str | None = None
    breached: bool = False
    search: str | None = None
    duplicates: bool = False
    sort: str = "sla_due_at"

    def report_filter(self) -> ReportFilter:
        """The shared query layer's filter for this view."""
        status = [] if self.status == "all" else [self.status]
        return ReportFilter(
            status=status,
            severity=[self.severity] if self.severity else [],
            category=[self.category] if self.category else [],
            assignee_id=self.assignee or None,
            sla_breached=self.breached,
            q=self.search or None,
            include_duplicates=self.duplicates,
        )

    def labels(self) -> list[str]:
        """Short descriptions of the active filters, for the filter bar."""
        out = [f"status:{self.status}"]
        if self.severity:
            out.append(f"severity:{self.severity}")
        if self.category:
            out.append(f"category:{self.category}")
        if self.assignee:
            out.append(f"assignee:{self.assignee}")
        if self.breached:
            out.append("breached")
        if self.duplicates:
            out.append("+duplicates")
        if self.search:
            out.append(f'"{self.search}"')
        return out

    def next_sort(self) -> ListQuery:
        """The same query with the next sort in ``SORTS``."""
        order = list(SORTS)
        position = order.index(self.sort) if self.sort in order else -1
        return replace(self, sort=order[(position + 1) % len(order)])

    def cleared(self) -> ListQuery:
        """No filters (open reports), same sort."""
        return ListQuery(sort=self.sort)


@dataclass(frozen=True)
class ReportRow:
    """One line of the report list: plain values, safe to hand to the UI thread."""

    number: int
    title: str
    severity: str
    status: str
    category: str
    component: str | None
    created_at: datetime
    sla_due_at: datetime
    occurrences: int
    claimed_by: str | None  # only a live claim
    assignee: str | None
    version: int
    is_duplicate: bool
    needs_human: bool

    @property
    def is_open(self) -> bool:
        return is_open(self.status)


@dataclass
class RowsPage:
    """A page of rows and the cursor for the next one (None at the end)."""

    rows: list[ReportRow]
    next_cursor: str | None


@dataclass
class ReportDetail:
    """Everything the detail view shows about one report, read in one go on the database thread."""

    report: BugReport
    canonical: ReportRow | None  # the group's canonical when ``report`` is a duplicate
    duplicates: list[ReportRow]  # the newest duplicates of the group's canonical
    duplicate_count: int
    occurrences: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    fingerprints: int
    signature: str | None  # what went into the fingerprint hash, one item a line
    algorithm: str | None
    events: list[BugReportEvent]  # newest first
    allowed: tuple[str, ...]
    claim_live: bool

    @property
    def number(self) -> int:
        return self.report.number

    @property
    def is_duplicate(self) -> bool:
        return self.canonical is not None


@dataclass(frozen=True)
class Action:
    """A change a person asked for: what, on which report, by whom, against which version."""

    kind: str  # triage | move | note | resolve | reopen | merge | split
    number: int
    actor: str
    version: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    force: bool = False  # override someone else's claim (asked for explicitly)


@dataclass
class ActionResult:
    """What an action did: the action, a one-line summary, and the fresh detail of the report to show."""

    action: Action
    message: str
    detail: ReportDetail


DUPLICATES_SHOWN = 50
"""Duplicates listed in the detail view (the count is always exact)."""

EVENTS_SHOWN = 50
"""Events in the detail view's timeline."""


def default_actor() -> str:
    """Who a person's changes are recorded as: ``$BUGDESK_ACTOR``, else the login name."""
    try:
        return os.environ.get("BUGDESK_ACTOR") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "human"


class Store:
    """The dashboard's gateway to the database: one thread, one connection, for the app's lifetime."""

    def __init__(
        self,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.settings = settings
        self.now = now
        self.page_size = page_size
        self._executor: ThreadPoolExecutor | None = None
        self._ready: Future[None] | None = None
        self._change_token: Any = None
        self._db: Any = None

    # -- the database thread -------------------------------------------------------------------

    def start(self) -> None:
        """Start the database thread and connect on it (errors surface on the first ``call``)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bugdesk-db")
            self._ready = self._executor.submit(self._connect)

    async def call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func`` on the database thread and await its result.

        A failure to connect is raised by every call, not lost in the thread.
        """
        self.start()
        assert self._executor is not None and self._ready is not None
        await asyncio.wrap_future(self._ready)
        return await asyncio.wrap_future(self._executor.submit(func, *args, **kwargs))

    def run_sync(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func`` on the database thread and wait (for benchmarks and tests)."""
        self.start()
        assert self._executor is not None and self._ready is not None
        self._ready.result()
        return self._executor.submit(func, *args, **kwargs).result()

    def close(self) -> None:
        """Close the connection and stop the thread; waits for work already queued."""
        if self._executor is None:
            return
        self._executor.submit(self._disconnect)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _connect(self) -> None:
        assert threading.current_thread().name.startswith("bugdesk-db")
        current = dbmod.database.obj
        # Reuse the process's database when it already points at the same place (the demo
        # starts the API first, whose pool the models are bound to); rebinding would pull
        # the API's connections out from under it.
        if current is None or not _same_target(current, self.settings.database_url):
            current = dbmod.use(dbmod.open_database(self.settings.database_url, self.settings))
        self._db = current
        current.connect(reuse_if_open=True)
        dbmod.ensure_schema(current)
        self._change_token = self._read_change_token()

    def _disconnect(self) -> None:
        if self._db is not None and not self._db.is_closed():
            self._db.close()

    # -- change detection ---------------------------------------------------------------------

    def _read_change_token(self) -> Any:
        if dbmod.is_sqlite():
            # Changes when another connection commits; a read of a few microseconds.
            return dbmod.database.execute_sql("PRAGMA data_version").fetchone()[0]
        # Every change writes an event, and the primary key index answers max(id) at once.
        return dbmod.database.execute_sql("SELECT max(id) FROM bug_report_events").fetchone()[0]

    def changed(self) -> bool:
        """Whether someone else changed the database since the last call (call on the database thread)."""
        token = self._read_change_token()
        if token == self._change_token:
            return False
        self._change_token = token
        return True

    # -- reads --------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The header's counts (``queries.status_summary``)."""
        return queries.status_summary(now=self.now())

    def page(self, query: ListQuery, cursor: str | None = None, limit: int | None = None) -> RowsPage:
        """One page of the list, after ``cursor``."""
        page = queries.list_reports(
            query.report_filter(), sort=query.sort, limit=limit or self.page_size, cursor=cursor, now=self.now()
        )
        return RowsPage(rows=self._rows(page.items), next_cursor=page.next_cursor)

    def reload(self, query: ListQuery, count: int) -> RowsPage:
        """The first ``count`` rows again (at least a page), for a refresh that keeps what was loaded."""
        rows: list[ReportRow] = []
        cursor: str | None = None
        wanted = max(count, self.page_size)
        while True:
            page = self.page(query, cursor, min(queries.MAX_LIMIT, wanted - len(rows)))
            rows.extend(page.rows)
            cursor = page.next_cursor
            if cursor is None or len(rows) >= wanted:
                return RowsPage(rows=rows, next_cursor=cursor)

    def _rows(self, reports: list[BugReport]) -> list[ReportRow]:
        occurrences = occurrences_by_canonical([r.id for r in reports if r.duplicate_of_id is None])
        now = self.now()
        return [_row(r, occurrences.get(r.id, 1), now) for r in reports]

    def detail(self, ref: Any) -> ReportDetail:
        """The report ``ref`` (number or UUID) with its group, duplicates and timeline."""
        report = get_report(ref)
        canonical = dedup.canonical_of(report) if report.duplicate_of_id is not None else report
        group = dedup.group_occurrences(canonical)
        duplicates = list(
            BugReport.select()
            .where(BugReport.duplicate_of == canonical.id)
            .order_by(BugReport.created_at.desc(), BugReport.number.desc())
            .limit(DUPLICATES_SHOWN)
        )
        duplicate_count = (
            BugReport.select(fn.COUNT(SQL("*"))).where(BugReport.duplicate_of == canonical.id).scalar() or 0
        )
        row = (
            BugReportDedup.get_or_none(BugReportDedup.fingerprint == report.fingerprint) if report.fingerprint else None
        )
        now = self.now()
        events = list(
            BugReportEvent.select()
            .where(BugReportEvent.report == report.id)
            .order_by(BugReportEvent.created_at.desc(), BugReportEvent.id.desc())
            .limit(EVENTS_SHOWN)
        )
        return ReportDetail(
            report=report,
            canonical=_row(canonical, group["occurrences"], now) if canonical.id != report.id else None,
            duplicates=[_row(d, 0, now) for d in duplicates],
            duplicate_count=duplicate_count,
            occurrences=group["occurrences"],
            first_seen_at=group["first_seen_at"],
            last_seen_at=group["last_seen_at"],
            fingerprints=len(group["fingerprints"]),
            signature=row.signature if row else None,
            algorithm=row.algorithm if row else None,
            events=events,
            allowed=allowed_targets(report.status),
            claim_live=bool(report.claimed_by and report.claim_expires_at and report.claim_expires_at > now),
        )

    def lookup(self, ref: Any) -> ReportRow:
        """One report as a row (for confirmations such as "merge into #12 …?")."""
        report = get_report(ref)
        canonical = dedup.canonical_of(report) if report.duplicate_of_id is not None else report
        return _row(report, dedup.group_occurrences(canonical)["occurrences"], self.now())

    # -- writes, all through bugdesk.service ---------------------------------------------------

    def perform(self, action: Action) -> ActionResult:
        """Apply ``action`` through the service layer and read the report back, in one trip to the thread."""
        now = self.now()
        f = action.fields
        n, actor = action.number, action.actor
        shown = n
        if action.kind == "triage":
            report = service.triage(
                n,
                actor,
                version=action.version,
                settings=self.settings,
                now=now,
                **{k: v for k, v in f.items() if k in ("severity", "category", "assignee_id", "component")},
            )
            if action.version is not None and report.version == action.version:
                message = f"#{n}: nothing to change"
            else:
                message = f"#{n} triaged: {report.severity}, {report.category}, assignee {report.assignee_id or 'none'}"
        elif action.kind == "move":
            report = service.move(
                n,
                f["status"],
                actor,
                version=action.version,
                note=f.get("note"),
                close_reason=f.get("close_reason"),
                force=action.force,
                now=now,
            )
            message = f"#{n} moved to {report.status}"
        elif action.kind == "note":
            service.add_note(n, actor, f["body"], now=now)
            message = f"note added to #{n}"
        elif action.kind == "resolve":
            report = service.resolve(
                n,
                actor,
                notes=f.get("notes"),
                commits=f.get("commits") or None,
                fixed_in_release=f.get("fixed_in_release"),
                version=action.version,
                force=action.force,
                now=now,
            )
            message = f"#{n} resolved"
        elif action.kind == "reopen":
            report = service.reopen(n, actor, reason=f.get("reason"), version=action.version, now=now)
            message = f"#{n} reopened as {report.status}"
        elif action.kind == "merge":
            target = dedup.merge(n, f["into"], actor, now=now)
            shown = target.number
            message = f"#{n} merged into #{target.number}"
        elif action.kind == "split":
            report = dedup.split(n, actor, now=now)
            message = f"#{report.number} split out into its own report"
        else:
            raise ValueError(f"unknown action {action.kind!r}")
        return ActionResult(action=action, message=message, detail=self.detail(shown))


def _same_target(database: Any, url: str) -> bool:
    """Whether ``database`` (a peewee Database) opens the same file or server database as ``url``."""
    wanted = dbmod.open_database(url)  # not connected: only parses the URL
    return dbmod.is_sqlite(wanted) == dbmod.is_sqlite(database) and wanted.database == database.database


def occurrences_by_canonical(canonical_ids: list[Any]) -> dict[Any, int]:
    """Occurrences per canonical over all its fingerprints, for one page in one query."""
    if not canonical_ids:
        return {}
    rows = (
        BugReportDedup.select(BugReportDedup.canonical, fn.SUM(BugReportDedup.occurrences))
        .where(BugReportDedup.canonical.in_(canonical_ids))
        .group_by(BugReportDedup.canonical)
        .tuples()
    )
    field_ = BugReport.id
    return {field_.python_value(cid): int(total) for cid, total in rows}


def _row(report: BugReport, occurrences: int, now: datetime) -> ReportRow:
    live = report.claimed_by and report.claim_expires_at and report.claim_expires_at > now
    return ReportRow(
        number=report.number,
        title=report.title,
        severity=report.severity,
        status=report.status,
        category=report.category,
        component=report.component,
        created_at=report.created_at,
        sla_due_at=report.sla_due_at,
        occurrences=occurrences,
        claimed_by=report.claimed_by if live else None,
        assignee=report.assignee_id,
        version=report.version,
        is_duplicate=report.duplicate_of_id is not None,
        needs_human=bool(report.needs_human),
    )


__all__ = [
    "SORTS",
    "STATUS_CHOICES",
    "Action",
    "ActionResult",
    "ListQuery",
    "ReportDetail",
    "ReportRow",
    "RowsPage",
    "Store",
    "default_actor",
    "occurrences_by_canonical",
]
