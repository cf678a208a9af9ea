"""``/api/bug-reports``: submit, list, read, update (conditional), resolve and reopen reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bugdesk import payload, queries, service, telemetry
from bugdesk.api.deps import DatabaseRoute, IfMatch, Ingester, Reader, SettingsDep, Writer, version_from
from bugdesk.api.schemas import (
    AUTH,
    BODY,
    ReopenRequest,
    ReportCreate,
    ReportDetail,
    ReportPage,
    ReportPublic,
    ReportUpdate,
    ResolveRequest,
    Severity,
    StatusFilter,
    SubmissionResult,
    TimestampFilter,
    problems,
)
from bugdesk.errors import ValidationError
from bugdesk.models import BugReport

router = APIRouter(prefix="/api/bug-reports", tags=["reports"], route_class=DatabaseRoute)

REF_PATTERN = r"^#?[0-9]{1,18}$|^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
RefPath = Annotated[str, Path(pattern=REF_PATTERN, description="The report's number (42) or UUID.")]

_TRIAGE_FIELDS = frozenset({"severity", "category", "assignee_id", "component"})
_RESOLUTION_FIELDS = frozenset({"resolution_notes", "resolution_commits", "fixed_in_release"})


def etag(report: BugReport) -> str:
    """The report's version as a strong ETag, for ``If-Match`` on the next write."""
    return f'"{report.version}"'


def _answer(report: BugReport, response: Response) -> dict[str, Any]:
    response.headers["ETag"] = etag(report)
    return payload.report_json(report)


@router.post(
    "",
    status_code=201,
    response_model=SubmissionResult,
    summary="Submit a report",
    responses={
        200: {"description": "Joined an existing group (or replayed such an answer).", "model": SubmissionResult},
        **problems(*AUTH, *BODY),
    },
)
def create_report(
    body: ReportCreate,
    request: Request,
    response: Response,
    actor: Ingester,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=255, description="Any unique string per submission: a retry with it never creates twice."),
    ] = None,
) -> dict[str, Any]:
    """File a report: 201 when it is a new canonical report, 200 when it joined the group of `canonical`.

    `traceparent` and `X-Request-ID` headers fill `trace_id` and `request_id` when the body has none; the
    server's release (setting `release`) fills `release_sha`.
    """
    data = telemetry.fill_submission(body.model_dump(exclude_none=True), request.headers, settings.release)
    result = service.create_report(data, actor, settings=settings, idempotency_key=idempotency_key)
    canonical = result.canonical or result.report
    response.status_code = 200 if result.deduplicated else 201
    response.headers["Location"] = f"/api/bug-reports/{canonical.number}"
    response.headers["ETag"] = etag(canonical)
    if not result.created:
        response.headers["Idempotent-Replayed"] = "true"
    return {
        "canonical": {
            "id": str(canonical.id),
            "number": canonical.number,
            "status": canonical.status,
            "version": canonical.version,
        },
        "submission": {"id": str(result.report.id), "number": result.report.number},
        "deduplicated": result.deduplicated,
        "regressed": result.regressed,
        "replayed": not result.created,
    }


class ReportQuery(BaseModel):
    """Filters for listing; list-valued ones repeat (`?severity=high&severity=critical`)."""

    model_config = ConfigDict(extra="forbid")

    status: list[StatusFilter] = Field(default_factory=list, description="`open` and `done` are aliases.")
    severity: list[Severity] = Field(default_factory=list)
    category: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list)
    component: list[Annotated[str, Field(max_length=255)]] = Field(default_factory=list)
    assignee_id: str | None = Field(default=None, max_length=255)
    assigned_to: str | None = Field(default=None, max_length=255, description="Alias of assignee_id.")
    claimed_by: str | None = Field(default=None, max_length=255)
    needs_human: bool | None = None
    sla_breached: bool = False
    trace_id: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=128)
    release_sha: str | None = Field(default=None, max_length=64)
    fingerprint: str | None = Field(default=None, max_length=64)
    created_after: TimestampFilter | None = None
    created_before: TimestampFilter | None = None
    include_duplicates: bool = False
    duplicates_of: str | None = Field(default=None, pattern=REF_PATTERN, description="Duplicates of this report.")
    q: str | None = Field(default=None, max_length=200, description="Words that must all appear in title/description.")
    sort: Literal[queries.SORTS] = "-created_at"  # type: ignore[valid-type]
    limit: int = Field(default=50, ge=1, le=queries.MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=512, description="`next_cursor` of the previous page.")


@router.get("", response_model=ReportPage, summary="List reports", responses=problems(*AUTH, 404))
def list_reports(query: Annotated[ReportQuery, Query()], actor: Reader) -> dict[str, Any]:
    """One page of canonical reports (duplicates with `include_duplicates=true`), newest first by default."""
    if query.assignee_id and query.assigned_to and query.assignee_id != query.assigned_to:
        raise ValidationError("assigned_to is an alias of assignee_id: send one", field="assigned_to")
    flt = queries.ReportFilter(
        status=list(query.status),
        severity=list(query.severity),
        category=query.category,
        component=query.component,
        assignee_id=query.assignee_id or query.assigned_to,
        claimed_by=query.claimed_by,
        sla_breached=query.sla_breached,
        needs_human=query.needs_human,
        trace_id=query.trace_id,
        request_id=query.request_id,
        release_sha=query.release_sha,
        fingerprint=query.fingerprint,
        created_after=query.created_after,
        created_before=query.created_before,
        include_duplicates=query.include_duplicates,
        duplicates_of=payload.load_report(query.duplicates_of).id if query.duplicates_of else None,
        q=query.q,
    )
    page = queries.list_reports(flt, sort=query.sort, limit=query.limit, cursor=query.cursor)
    return {"items": [payload.report_json(r) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/{ref}", response_model=ReportDetail, summary="Read a report", responses=problems(*AUTH, 404))
def get_report(
    ref: RefPath,
    actor: Reader,
    response: Response,
    events: Annotated[int, Query(ge=0, le=500, description="How many recent events to include.")] = 20,
) -> dict[str, Any]:
    """The report with its dedup group, repo path hints, recent events, claim and agent attempts; ETag = version."""
    report = payload.load_report(ref)
    response.headers["ETag"] = etag(report)
    return payload.report_payload(report, events=events)


@router.patch(
    "/{ref}",
    response_model=ReportPublic,
    summary="Update a report",
    responses=problems(*AUTH, 404, 409, 412, 428, *BODY),
)
def update_report(
    ref: RefPath, body: ReportUpdate, actor: Writer, response: Response, settings: SettingsDep, if_match: IfMatch = None
) -> dict[str, Any]:
    """Either triage fields (severity, category, assignee_id, component) or a status move, conditional on a version.

    A move to `resolved` takes `resolution_notes`, `resolution_commits` and `fixed_in_release`; `closed` takes a
    `close_reason`; a claimed report needs its `claim_token`. 428 without a version, 412 when it is stale, 409 with
    the `allowed` targets for an illegal move.
    """
    version = version_from(if_match, body.version, required=True)
    fields = body.model_fields_set - {"version"}
    if not fields:
        raise ValidationError("nothing to change: send a status or triage fields", field="status")
    triage = fields & _TRIAGE_FIELDS
    if triage and fields - _TRIAGE_FIELDS:
        raise ValidationError(
            f"send triage fields ({', '.join(sorted(triage))}) and a status change "
            f"({', '.join(sorted(fields - _TRIAGE_FIELDS))}) in separate requests",
            field=sorted(fields - _TRIAGE_FIELDS)[0],
        )
    if triage:
        changes = {name: getattr(body, name) for name in triage}
        report = service.triage(ref, actor, version=version, settings=settings, **changes)
    elif body.status is None:
        raise ValidationError(f"{', '.join(sorted(fields))} only go with a status change", field="status")
    elif body.status == "resolved":
        report = service.resolve(
            ref,
            actor,
            notes=body.resolution_notes or body.note,
            commits=body.resolution_commits,
            claim_token=body.claim_token,
            version=version,
            fixed_in_release=body.fixed_in_release,
        )
    elif fields & _RESOLUTION_FIELDS:
        raise ValidationError(
            f"{', '.join(sorted(fields & _RESOLUTION_FIELDS))} only go with status resolved",
            field=sorted(fields & _RESOLUTION_FIELDS)[0],
        )
    else:
        report = service.move(
            ref,
            body.status,
            actor,
            version=version,
            note=body.note,
            close_reason=body.close_reason,
            claim_token=body.claim_token,
        )
    return _answer(report, response)


@router.post(
    "/{ref}/resolve",
    response_model=ReportPublic,
    summary="Resolve a report",
    responses=problems(*AUTH, 404, 409, 412, *BODY),
)
def resolve_report(
    ref: RefPath, body: ResolveRequest, actor: Writer, response: Response, if_match: IfMatch = None
) -> dict[str, Any]:
    """Mark resolved with notes and commit SHAs. A claimed report needs its `claim_token` (the claim is the lock)."""
    report = service.resolve(
        ref,
        actor,
        notes=body.notes,
        commits=body.commits,
        claim_token=body.claim_token,
        version=version_from(if_match, body.version, required=False),
        fixed_in_release=body.fixed_in_release,
    )
    return _answer(report, response)


@router.post(
    "/{ref}/reopen",
    response_model=ReportPublic,
    summary="Reopen a report",
    responses=problems(*AUTH, 404, 409, 412, *BODY),
)
def reopen_report(
    ref: RefPath, actor: Writer, response: Response, body: ReopenRequest | None = None, if_match: IfMatch = None
) -> dict[str, Any]:
    """Bring a resolved or closed report back to `triaged`."""
    body = body or ReopenRequest()
    version = version_from(if_match, body.version, required=False)
    report = service.reopen(ref, actor, reason=body.reason, version=version)
    return _answer(report, response)
