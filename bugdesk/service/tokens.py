"""API tokens: secrets shown once, stored as SHA-256, compared in constant time, scoped."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

from bugdesk import validate
from bugdesk.clock import utcnow
from bugdesk.errors import AuthError, NotFound, ScopeError, ValidationError
from bugdesk.models import ApiToken
from bugdesk.service._base import sha256_hex, transaction
from bugdesk.service._fast import select_one

SCOPES = ("read", "write", "ingest", "admin")
# admin implies everything; write implies read.
_IMPLIES = {"admin": set(SCOPES), "write": {"read", "write"}, "read": {"read"}, "ingest": {"ingest"}}


def parse_scopes(scopes: str | list[str]) -> list[str]:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    cleaned = sorted({s.strip().lower() for s in items if s.strip()})
    if not cleaned:
        raise ValidationError(f"give at least one scope: {', '.join(SCOPES)}", field="scopes")
    for scope in cleaned:
        validate.choice(scope, "scopes", SCOPES)
    return cleaned


def create_token(name: str, scopes: str | list[str], *, now: datetime | None = None) -> tuple[ApiToken, str]:
    """Returns the token row and the secret; the secret is not stored and cannot be shown again."""
    name = validate.clean_name(name, "name") or ""
    if not name:
        raise ValidationError("a token needs a name (it is recorded as the actor)", field="name")
    scope_list = parse_scopes(scopes)
    secret = "bd_" + secrets.token_urlsafe(32)
    with transaction():
        if ApiToken.get_or_none(ApiToken.name == name) is not None:
            raise ValidationError(f"a token named {name!r} exists; revoke it or pick another name", field="name")
        token = ApiToken.create(
            name=name, token_hash=sha256_hex(secret), scopes=",".join(scope_list), created_at=now or utcnow()
        )
    return token, secret


def authenticate(secret: str | None, scope: str) -> ApiToken:
    """The live token for ``secret`` holding ``scope``; AuthError (401) or ScopeError (403) otherwise."""
    if not secret:
        raise AuthError("missing token: send `Authorization: Bearer <token>`")
    digest = sha256_hex(secret)
    token = select_one(ApiToken, "token_by_hash", lambda: ApiToken.select().where(ApiToken.token_hash == ""), [digest])
    # The lookup is by hash; the explicit constant-time compare keeps the check honest anyway.
    if token is None or not hmac.compare_digest(token.token_hash, digest) or token.revoked_at is not None:
        raise AuthError("invalid or revoked token")
    granted = set().union(*(_IMPLIES[s] for s in token.scopes.split(",") if s in _IMPLIES))
    if scope not in granted:
        raise ScopeError(f"token {token.name!r} lacks the {scope!r} scope (it has: {token.scopes})")
    return token


def touch(token: ApiToken, *, now: datetime | None = None) -> None:
    """Record use, at most once a minute per token to keep reads from writing."""
    now = now or utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        with transaction():
            ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()


def revoke_token(name: str, *, now: datetime | None = None) -> ApiToken:
    with transaction():
        token = ApiToken.get_or_none(ApiToken.name == name)
        if token is None:
            raise NotFound(f"no token named {name!r}")
        if token.revoked_at is None:
            token.revoked_at = now or utcnow()
            token.save()
        return token


def list_tokens() -> list[ApiToken]:
    return list(ApiToken.select().order_by(ApiToken.name))
