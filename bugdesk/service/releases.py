"""The releases timeline: which commit was live in which environment from when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bugdesk import validate
from bugdesk.clock import as_utc, utcnow
from bugdesk.models import Release
from bugdesk.service._base import transaction


def add_release(
    sha: Any, *, version: str | None = None, environment: str | None = None, deployed_at: datetime | None = None
) -> Release:
    """Record a deploy; recording the same sha and environment again updates it."""
    sha = validate.commit_sha(sha, "sha")
    environment = validate.clean_name(environment, "environment", max_len=64) or "production"
    version = validate.clean_name(version, "version", max_len=64)
    deployed_at = as_utc(deployed_at) if deployed_at else utcnow()
    with transaction():
        release = Release.get_or_none((Release.sha == sha) & (Release.environment == environment))
        if release is None:
            return Release.create(sha=sha, version=version, environment=environment, deployed_at=deployed_at)
        release.version = version or release.version
        release.deployed_at = deployed_at
        release.save()
        return release


def release_at(when: datetime, environment: str | None) -> Release | None:
    """The release live in ``environment`` at ``when`` (production when unknown)."""
    return (
        Release.select()
        .where((Release.environment == (environment or "production")) & (Release.deployed_at <= when))
        .order_by(Release.deployed_at.desc())
        .first()
    )


def first_release_after(when: datetime, environment: str | None) -> Release | None:
    return (
        Release.select()
        .where((Release.environment == (environment or "production")) & (Release.deployed_at > when))
        .order_by(Release.deployed_at)
        .first()
    )


def deployed_at(sha: str, environment: str | None) -> datetime | None:
    release = Release.get_or_none((Release.sha == sha) & (Release.environment == (environment or "production")))
    return release.deployed_at if release else None
