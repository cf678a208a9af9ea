"""The agents' HTTP client: a typed method per endpoint, retries with backoff, and claims as context managers.

    from bugdesk.client import Client

    with Client("http://127.0.0.1:8765", token) as api:
        lease = api.claim_next(wait=10)
        if lease is not None:
            with lease:                      # heartbeats in the background
                lease.log("looking at " + ", ".join(lease.report["repo_path_hints"]))
                lease.resolve(commits=["4f2a9c1"], notes="guarded the lookup")
                                             # an exception in the block releases the claim

Errors come back as the ``bugdesk.errors`` classes the server raised (``StaleVersion``,
``ClaimConflict``, ``IllegalTransition`` ...), so a caller handles them the same way in
process and over HTTP. Connection failures, 429 and 503 are retried with exponential backoff;
a submission carries an ``Idempotency-Key`` so a retried create never files the report twice.
This module imports neither peewee nor FastAPI.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bugdesk import errors

log = logging.getLogger("bugdesk.client")

DEFAULT_URL = "http://127.0.0.1:8765"
RETRY_STATUSES = frozenset({429, 503})
# Requests that never reached the server: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class ApiError(errors.BugdeskError):
    """An API error with no more specific class; ``http_status`` and ``problem`` carry the answer."""

    def __init__(self, message: str, *, http_status: int, **details: Any) -> None:
        super().__init__(message, **details)
        self.http_status = http_status


_BY_KIND: dict[str, type[errors.BugdeskError]] = {
    "validation-error": errors.ValidationError,
    "not-found": errors.NotFound,
    "illegal-transition": errors.IllegalTransition,
    "stale-version": errors.StaleVersion,
    "claim-conflict": errors.ClaimConflict,
    "queue-empty": errors.QueueEmpty,
    "auth-error": errors.AuthError,
    "scope-error": errors.ScopeError,
    "schema-error": errors.SchemaError,
    "config-error": errors.ConfigError,
}


def error_from(response: httpx.Response) -> errors.BugdeskError:
    """The bugdesk error a problem+json (or any error) response stands for."""
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError
    except ValueError:
        problem = {"detail": response.text[:500] or response.reason_phrase}
    detail = str(problem.get("detail") or response.reason_phrase)
    extra = {k: v for k, v in problem.items() if k not in ("detail", "status")}
    kind = str(problem.get("type", "")).rsplit(":", 1)[-1]
    cls = _BY_KIND.get(kind)
    if cls is not None:
        return cls(detail, **extra)
    return ApiError(detail, http_status=response.status_code, **extra)


# Problem types of answers that say the request was not carried out (shed before it ran, or rolled back),
# so even a non-idempotent call may be sent again.
_NOT_DONE = frozenset({"overloaded", "database-busy"})
MAX_DELAY = 10.0


def _retry_after(response: httpx.Response | None) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    value = (response.headers.get("retry-after") or "").strip() if response is not None else ""
    if value.isdigit():
        return float(value)
    if value:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is not None:
            return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


def _not_done(response: httpx.Response) -> bool:
    """Whether a 429/503 says the request was not carried out: any 429, or bugdesk's own 503 problems.

    A bare 503 may come from a proxy that gave up after forwarding the request, which may have run.
    """
    if response.status_code == 429:
        return True
    try:
        problem = response.json()
    except ValueError:
        return False
    kind = str(problem.get("type", "")) if isinstance(problem, dict) else ""
    return kind.startswith("urn:bugdesk:problem:") and kind.rsplit(":", 1)[-1] in _NOT_DONE


class Client:
    """A bugdesk API client. ``token`` defaults to ``$BUGDESK_TOKEN``, ``base_url`` to ``$BUGDESK_URL``."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        token = token or os.environ.get("BUGDESK_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.retries = retries
        self.backoff = backoff
        self._http = httpx.Client(
            base_url=base_url or os.environ.get("BUGDESK_URL", DEFAULT_URL),
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ transport

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        replay_safe: bool = False,
    ) -> httpx.Response:
        """Send with retries; raises the matching ``bugdesk.errors`` class on an error answer.

        Requests that never left are always retried; ones that may have reached the server only when
        they are idempotent (GET, DELETE) or ``replay_safe`` (a create with its Idempotency-Key). A 429,
        or a 503 from bugdesk itself (shed by admission control, database busy), means nothing was done,
        so any call is sent again after ``Retry-After`` (plus jitter) or the exponential backoff.
        """
        resend_ok = method in _IDEMPOTENT or replay_safe
        extra = {"timeout": timeout} if timeout is not None else {}
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, json=json, params=params, headers=headers, **extra)
            except _NOT_SENT as exc:
                if last:
                    raise
                self._pause(attempt, None, exc)
                continue
            except httpx.TransportError as exc:
                if last or not resend_ok:
                    raise
                self._pause(attempt, None, exc)
                continue
            if response.status_code in RETRY_STATUSES and not last and (resend_ok or _not_done(response)):
                self._pause(attempt, response, None)
                continue
            if response.status_code >= 400:
                raise error_from(response)
            return response
        raise AssertionError("unreachable")

    def _pause(self, attempt: int, response: httpx.Response | None, exc: Exception | None) -> None:
        backoff = self.backoff * (2**attempt)
        asked = _retry_after(response)
        # With Retry-After: at least what the server asked for, spread out, since clients shed together would
        # otherwise all come back in the same instant and be shed together again.
        jittered = backoff * random.uniform(0.5, 1.0) if asked is None else max(asked, backoff) * random.uniform(1, 1.5)
        delay = min(jittered, MAX_DELAY)
        reason = exc.__class__.__name__ if exc else f"HTTP {response.status_code}"
        log.info("bugdesk API: %s, retrying in %.2f s", reason, delay)
        time.sleep(delay)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()

    # ---------------------------------------------------------------------------------------- meta

    def health(self) -> dict[str, Any]:
        return self._json("GET", "/api/health")

    def status(self) -> dict[str, Any]:
        return self._json("GET", "/api/status")

    def metrics(self) -> str:
        return self.request("GET", "/api/metrics").text

    # ------------------------------------------------------------------------------------- reports

    def create_report(
        self,
        data: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Submit a report (``data`` and/or keyword fields). The answer says whether it was deduplicated."""
        body = {**(data or {}), **fields}
        key = idempotency_key or uuid.uuid4().hex
        return self._json(
            "POST",
            "/api/bug-reports",
            json=body,
            headers={**(headers or {}), "Idempotency-Key": key},
            replay_safe=True,
        )

    def list_reports(self, **filters: Any) -> dict[str, Any]:
        """One page: ``{"items": [...], "next_cursor": ...}``. Filters are the query parameters of the API."""
        return self._json("GET", "/api/bug-reports", params=_params(filters))

    def iter_reports(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every report matching ``filters``, following the cursor page by page."""
        cursor = None
        while True:
            page = self.list_reports(**filters, **({"cursor": cursor} if cursor else {}))
            yield from page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def get_report(self, ref: Any, *, events: int = 20) -> dict[str, Any]:
        """The agent payload: report, dedup group, repo path hints, events, claim, agent runs."""
        return self._json("GET", f"/api/bug-reports/{ref}", params={"events": events})

    def update_report(self, ref: Any, *, version: int | None, **fields: Any) -> dict[str, Any]:
        """PATCH triage fields or a status move, conditional on ``version`` (None sends ``If-Match: *``)."""
        if_match = "*" if version is None else f'"{version}"'
        return self._json("PATCH", f"/api/bug-reports/{ref}", json=fields, headers={"If-Match": if_match})

    def resolve(
        self,
        ref: Any,
        *,
        claim_token: str | None = None,
        notes: str | None = None,
        commits: list[str] | None = None,
        fixed_in_release: str | None = None,
        version: int | None = None,
    ) -> dict[str, Any]:
        body = _drop_none(
            claim_token=claim_token, notes=notes, commits=commits, fixed_in_release=fixed_in_release, version=version
        )
        return self._json("POST", f"/api/bug-reports/{ref}/resolve", json=body)

    def reopen(self, ref: Any, *, reason: str | None = None, version: int | None = None) -> dict[str, Any]:
        return self._json("POST", f"/api/bug-reports/{ref}/reopen", json=_drop_none(reason=reason, version=version))

    # -------------------------------------------------------------------------------------- events

    def events(self, ref: Any, *, limit: int = 100) -> list[dict[str, Any]]:
        return self._json("GET", f"/api/bug-reports/{ref}/events", params={"limit": limit})

    def add_note(
        self, ref: Any, body: str, *, kind: str = "note", data: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Attach a note (or, with ``kind="agent_log"``, an agent log entry)."""
        return self._json("POST", f"/api/bug-reports/{ref}/events", json=_drop_none(kind=kind, body=body, data=data))

    # -------------------------------------------------------------------------------------- claims

    def claim(self, ref: Any, *, lease_seconds: int | None = None) -> Lease:
        """Claim one report; use the returned `Lease` as a context manager."""
        granted = self._json("POST", f"/api/bug-reports/{ref}/claim", json=_drop_none(lease_seconds=lease_seconds))
        return Lease(self, granted)

    def claim_next(
        self,
        *,
        severities: list[str] | None = None,
        categories: list[str] | None = None,
        components: list[str] | None = None,
        environment: str | None = None,
        skip_failed: bool = True,
        lease_seconds: int | None = None,
        wait: float = 0,
    ) -> Lease | None:
        """Claim the most urgent matching report, waiting up to ``wait`` seconds; None when there is none."""
        body = _drop_none(
            severities=severities,
            categories=categories,
            components=components,
            environment=environment,
            skip_failed=skip_failed,
            lease_seconds=lease_seconds,
            wait=wait,
        )
        timeout = self._http.timeout.read or 30.0
        response = self.request("POST", "/api/claims/next", json=body, timeout=max(timeout, wait + 10))
        if response.status_code == 204:
            return None
        return Lease(self, response.json())

    def heartbeat(self, ref: Any, claim_token: str, *, lease_seconds: int | None = None) -> str:
        """Extend a lease; returns the new expiry (ISO 8601)."""
        body = _drop_none(claim_token=claim_token, lease_seconds=lease_seconds)
        return self._json("POST", f"/api/bug-reports/{ref}/heartbeat", json=body)["expires_at"]

    def release(self, ref: Any, claim_token: str, *, reason: str | None = None) -> dict[str, Any]:
        body = _drop_none(claim_token=claim_token, reason=reason)
        return self._json("POST", f"/api/bug-reports/{ref}/release", json=body)

    # ---------------------------------------------------------------------------------------- runs

    def start_run(self, ref: Any) -> dict[str, Any]:
        return self._json("POST", f"/api/bug-reports/{ref}/runs")

    def finish_run(
        self, run_id: str, outcome: str, *, commits: list[str] | None = None, log: str | None = None
    ) -> dict[str, Any]:
        body = _drop_none(outcome=outcome, commits=commits, log=log)
        return self._json("POST", f"/api/runs/{run_id}/finish", json=body)

    def runs(self, ref: Any) -> list[dict[str, Any]]:
        return self._json("GET", f"/api/bug-reports/{ref}/runs")

    # --------------------------------------------------------------------------------------- admin

    def merge(self, ref: Any, into: Any) -> dict[str, Any]:
        return self._json("POST", f"/api/bug-reports/{ref}/merge", json={"into": str(into)})

    def split(self, ref: Any) -> dict[str, Any]:
        return self._json("POST", f"/api/bug-reports/{ref}/split")

    def add_release(
        self, sha: str, *, version: str | None = None, environment: str | None = None, deployed_at: str | None = None
    ) -> dict[str, Any]:
        body = _drop_none(sha=sha, version=version, environment=environment, deployed_at=deployed_at)
        return self._json("POST", "/api/releases", json=body)

    def tokens(self) -> list[dict[str, Any]]:
        return self._json("GET", "/api/tokens")

    def create_token(self, name: str, scopes: list[str]) -> dict[str, Any]:
        return self._json("POST", "/api/tokens", json={"name": name, "scopes": scopes})

    def revoke_token(self, name: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/tokens/{name}")


class Lease:
    """A claim held by this process. As a context manager it heartbeats in a background thread and, on leaving
    the block without having resolved or released, releases the claim (with the exception as the reason)."""

    def __init__(self, client: Client, granted: dict[str, Any], *, heartbeat_every: float | None = None) -> None:
        self.client = client
        self.token: str = granted["claim_token"]
        self.report: dict[str, Any] = granted["report"]
        self.expires_at: str = granted["expires_at"]
        self.ref = self.report["number"]
        self.done = False
        self.lost: errors.BugdeskError | None = None  # set when a heartbeat finds the claim gone
        remaining = (datetime.fromisoformat(self.expires_at) - datetime.now(UTC)).total_seconds()
        self.heartbeat_every = heartbeat_every or max(1.0, remaining / 3)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Held by a heartbeat in flight and by resolve/release: a beat that reached the server after the
        # claim ended would find it gone and mark a lease lost that was finished on purpose.
        self._ending = threading.Lock()

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._beat, name=f"bugdesk-heartbeat-{self.ref}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.done and self.lost is None:
            reason = f"{exc_type.__name__}: {exc}"[:2000] if exc_type else "the agent finished without resolving"
            try:
                self.release(reason=reason)
            except (errors.BugdeskError, httpx.HTTPError) as release_error:
                log.warning("could not release report #%s: %s", self.ref, release_error)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_every):
            try:
                with self._ending:
                    if self._stop.is_set():
                        return
                    self.heartbeat()
            except errors.ClaimConflict as exc:
                self.lost = exc
                log.warning("lost the claim on report #%s: %s", self.ref, exc)
                return
            except (errors.BugdeskError, httpx.HTTPError) as exc:
                log.warning("heartbeat for report #%s failed (will retry): %s", self.ref, exc)

    def heartbeat(self) -> str:
        self.expires_at = self.client.heartbeat(self.ref, self.token)
        return self.expires_at

    def log(self, body: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """An ``agent_log`` event on the report."""
        return self.client.add_note(self.ref, body, kind="agent_log", data=data)

    def resolve(
        self, *, commits: list[str] | None = None, notes: str | None = None, fixed_in_release: str | None = None
    ) -> dict[str, Any]:
        with self._ending:
            report = self.client.resolve(
                self.ref, claim_token=self.token, notes=notes, commits=commits, fixed_in_release=fixed_in_release
            )
            self._finished()
        return report

    def release(self, *, reason: str | None = None) -> dict[str, Any]:
        with self._ending:
            report = self.client.release(self.ref, self.token, reason=reason)
            self._finished()
        return report

    def _finished(self) -> None:
        self.done = True
        self._stop.set()


def _drop_none(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _params(filters: dict[str, Any]) -> dict[str, Any]:
    """Query parameters: booleans as true/false, None dropped, lists repeated."""
    out: dict[str, Any] = {}
    for key, value in filters.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out
