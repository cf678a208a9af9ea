"""Admin: merge and split dedup groups, the releases timeline, API tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from bugdesk import payload, validate
from bugdesk.api.deps import Admin, DatabaseRoute, Writer
from bugdesk.api.routes.reports import RefPath
from bugdesk.api.schemas import (
    AUTH,
    BODY,
    MergeRequest,
    ReleaseCreate,
    ReleasePublic,
    ReportPublic,
    TokenCreate,
    TokenPublic,
    TokenSecret,
    problems,
)
from bugdesk.models import ApiToken
from bugdesk.service import dedup, releases, tokens

router = APIRouter(prefix="/api", tags=["admin"], route_class=DatabaseRoute)


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "scopes": token.scopes.split(","),
        "created_at": payload.iso(token.created_at),
        "last_used_at": payload.iso(token.last_used_at),
        "revoked_at": payload.iso(token.revoked_at),
    }


@router.post(
    "/bug-reports/{ref}/merge",
    response_model=ReportPublic,
    summary="Merge two groups",
    responses=problems(*AUTH, 404, *BODY),
)
def merge(ref: RefPath, body: MergeRequest, actor: Admin) -> dict[str, Any]:
    """Fold this report's group into the group of `into`; duplicates and fingerprints move. Returns the target."""
    return payload.report_json(dedup.merge(ref, body.into, actor))


@router.post(
    "/bug-reports/{ref}/split",
    response_model=ReportPublic,
    summary="Split a report out",
    responses=problems(*AUTH, 404),
)
def split(ref: RefPath, actor: Admin) -> dict[str, Any]:
    """Take a duplicate out of its group: it becomes a canonical report of its own."""
    return payload.report_json(dedup.split(ref, actor))


@router.post(
    "/releases",
    status_code=201,
    response_model=ReleasePublic,
    summary="Record a deploy",
    responses=problems(*AUTH, *BODY),
)
def add_release(body: ReleaseCreate, actor: Writer) -> dict[str, Any]:
    """Record that a commit went live in an environment (the timeline regressions are judged against)."""
    release = releases.add_release(
        body.sha, version=body.version, environment=body.environment, deployed_at=body.deployed_at
    )
    return {
        "sha": release.sha,
        "version": release.version,
        "environment": release.environment,
        "deployed_at": payload.iso(release.deployed_at),
    }


@router.get("/tokens", response_model=list[TokenPublic], summary="List tokens", responses=problems(*AUTH))
def list_tokens(actor: Admin) -> list[dict[str, Any]]:
    """Every token with its scopes and use; secrets are never shown again."""
    return [token_json(t) for t in tokens.list_tokens()]


@router.post(
    "/tokens", status_code=201, response_model=TokenSecret, summary="Create a token", responses=problems(*AUTH, *BODY)
)
def create_token(body: TokenCreate, actor: Admin) -> dict[str, Any]:
    """A new token; its `secret` is in this answer only. The token's name is the actor of what it does."""
    token, secret = tokens.create_token(body.name, list(body.scopes))
    return {**token_json(token), "secret": secret}


@router.delete("/tokens/{name}", response_model=TokenPublic, summary="Revoke a token", responses=problems(*AUTH, 404))
def revoke_token(name: Annotated[str, Path(max_length=255)], actor: Admin) -> dict[str, Any]:
    """Revoke a token at once (revoking twice is harmless)."""
    # Token names never hold control characters, and NUL cannot even be compared on PostgreSQL.
    return token_json(tokens.revoke_token(validate.clean_name(name, "name") or name))
