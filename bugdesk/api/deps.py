"""Dependencies every route shares: settings, scoped bearer-token auth, the per-request connection, If-Match.

Plain ``def`` routes would run in the threadpool with FastAPI running each sync dependency in
a threadpool call of its own (possibly another thread). Peewee keeps its connection per
thread, so a connection opened in a dependency would not be the one the route uses.
`DatabaseRoute` therefore runs each sync endpoint (with its token check) as one threadpool
call inside ``database.connection_context()``. The API opens the database as a pool, so a
connection is a cheap check-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bugdesk.api.admission import kind_of
from bugdesk.config import Settings
from bugdesk.db import database, is_sqlite
from bugdesk.errors import BugdeskError, ScopeError, ValidationError
from bugdesk.service import tokens
from bugdesk.service._base import transaction


class PreconditionRequired(BugdeskError):
    """A write that must name the version it read, and did not."""

    title = "precondition required"
    http_status = 428


def in_connection(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` run with a database connection checked out for the duration of the call (in the calling thread)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with database.connection_context():
            return fn(*args, **kwargs)

    return wrapper


class _WriteBatches:
    """This worker's SQLite writes, queued on its event loop and run by one thread in batches (group commit).

    SQLite has one writer at a time. Threads that all start a write transaction at once wait
    in SQLite's busy handler, which sleeps 1, 2, 5, 10 ... ms between tries: with 16 concurrent
    clients that made a p99 of 750 ms at 310 reports/s; queued first come, first served on the
    event loop, p99 57 ms. The commit then was 40 % of a report's create (the WAL frames of every
    page the report touched, and the checkpoints they cause), so the writes that queued up while
    a batch ran now go together as the next batch: one transaction, each write in a savepoint
    of its own (one that fails rolls back alone and answers its own error), one commit. No
    answer leaves before the commit, so an acknowledged write survives the process being killed
    (WAL with ``synchronous=NORMAL``: a power cut may still take the last commits).
    """

    def __init__(self) -> None:
        # Agents' writes (claims, notes, resolves) go into the next batch before report submissions:
        # behind a storm of submissions an agent's call otherwise waited its turn behind all of them.
        self.first: deque[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = deque()
        self.submissions: deque[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = deque()
        # When each waiting submission joined (loop time), oldest first: admission control sheds new submissions
        # while the oldest has waited too long (see `AdmissionState.queue_target`).
        self.joined: deque[float] = deque()
        self.draining = False

    def __len__(self) -> int:
        return len(self.first) + len(self.submissions)

    async def submit(self, fn: Callable[..., Any], args: tuple[Any, ...], *, submission: bool) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        (self.submissions if submission else self.first).append((fn, args, future))
        if submission:
            self.joined.append(loop.time())
        if not self.draining:
            self.draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self:
                batch = [self.first.popleft() for _ in range(min(len(self.first), MAX_BATCH))]
                taken = min(len(self.submissions), MAX_BATCH - len(batch))
                batch += [self.submissions.popleft() for _ in range(taken)]
                for _ in range(taken):
                    self.joined.popleft()
                try:
                    outcomes = await anyio.to_thread.run_sync(_run_batch, [(fn, args) for fn, args, _ in batch])
                except Exception as exc:  # the commit failed: nothing of the batch is stored
                    outcomes = [(False, exc)] * len(batch)
                for (_, _, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(value) if ok else future.set_exception(value)
        finally:
            self.draining = False


# Writes in one transaction at most; about 0.5 ms each, so a batch holds the write lock for tens of ms at most.
MAX_BATCH = 64


def _run_batch(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    with database.connection_context(), transaction():
        for fn, args in jobs:
            try:
                with database.atomic():  # a savepoint: a write that fails takes back only its own changes
                    outcomes.append((True, fn(*args)))
            except Exception as exc:
                outcomes.append((False, exc))
    return outcomes


# One queue per event loop (per worker process) for SQLite writes; see `run_db`.
_write_queues: dict[asyncio.AbstractEventLoop, _WriteBatches] = {}


@contextlib.contextmanager
def sqlite_write_queue() -> Iterator[None]:
    """For the app's lifetime (called in its lifespan, on its event loop): queue this process's SQLite writes."""
    loop = asyncio.get_running_loop()
    _write_queues[loop] = _WriteBatches()
    try:
        yield
    finally:
        _write_queues.pop(loop, None)


def write_queue_delay() -> float:
    """Seconds the oldest report submission waiting in this process's SQLite write queue has waited (0: none waits)."""
    queue = _write_queues.get(asyncio.get_running_loop()) if is_sqlite() else None
    if not queue or not queue.joined:
        return 0.0
    return asyncio.get_running_loop().time() - queue.joined[0]


def write_queue_waiting() -> int:
    """How many SQLite writes of this process wait for their turn now (0 on PostgreSQL); the ingest's 429 reads it."""
    queue = _write_queues.get(asyncio.get_running_loop()) if is_sqlite() else None
    return len(queue) if queue is not None else 0


async def run_db(fn: Callable[..., Any], *args: Any, write: bool, submission: bool = False) -> Any:
    """``fn(*args)`` in the threadpool; on SQLite a write joins this process's next batch (see `_WriteBatches`).

    ``submission`` marks a report submission, which yields to agents' writes. Reads are not
    queued (WAL lets them run beside the writer), nor is anything on PostgreSQL, where writers
    lock rows, not the database.
    """
    queue = _write_queues.get(asyncio.get_running_loop()) if write and is_sqlite() else None
    if queue is not None:
        return await queue.submit(fn, args, submission=submission)
    return await anyio.to_thread.run_sync(fn, *args)


class DatabaseRoute(APIRoute):
    """A route whose sync endpoint checks its token, runs and answers in one threadpool call.

    - The bearer token (a `Credential` from `require`) is checked inside the endpoint's connection
      context: authentication costs no threadpool hop and no connection of its own.
    - The endpoint's JSON-ready dict (from `bugdesk.payload`) is answered as it is; FastAPI would
      otherwise validate it against the response model again, in one more hop. The response models
      still document every answer, and the schemathesis test checks the answers against them.
      Headers and a status code set on a ``response: Response`` parameter are kept.
    - Methods other than GET go through the SQLite write queue of `run_db`.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            methods = set(kwargs.get("methods") or ())
            writes = bool(methods - {"GET", "HEAD", "OPTIONS"})
            submission = any(kind_of(method, path) == "ingest" for method in methods)
            status_code = kwargs.get("status_code") or 200
            endpoint = _threaded(endpoint, writes=writes, submission=submission, status_code=status_code)
        super().__init__(path, endpoint, **kwargs)


def _threaded(fn: Callable[..., Any], *, writes: bool, submission: bool, status_code: int) -> Callable[..., Any]:
    def call(kwargs: dict[str, Any]) -> Any:
        with database.connection_context():
            kwargs = {k: v.actor() if isinstance(v, Credential) else v for k, v in kwargs.items()}
            result = fn(**kwargs)
        if not isinstance(result, dict | list):
            return result
        sub = kwargs.get("response")
        answer = JSONResponse(result, status_code=getattr(sub, "status_code", None) or status_code)
        if isinstance(sub, Response):
            answer.headers.update({k: v for k, v in sub.headers.items() if k != "content-length"})
        return answer

    @functools.wraps(fn)
    async def endpoint(**kwargs: Any) -> Any:
        return await run_db(call, kwargs, write=writes, submission=submission)

    return endpoint


async def get_settings(request: Request) -> Settings:
    # async: a plain def would cost a threadpool hop for an attribute read.
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="An API token: `bugdesk token create NAME --scopes read,write`")


@dataclass(frozen=True)
class Credential:
    """A bearer secret, checked against ``scopes`` by `actor` (which needs a database connection)."""

    secret: str
    scopes: tuple[str, ...]
    state: Any  # the request's state, where the access log finds the actor

    def actor(self) -> str:
        """The token's name, when the secret is a live token holding one of the scopes; 401/403 otherwise."""
        token = denied = None
        for scope in self.scopes:
            try:
                token = tokens.authenticate(self.secret, scope)
                break
            except ScopeError as exc:
                denied = exc
        if token is None:
            if len(self.scopes) == 1:
                raise denied
            raise ScopeError(f"{denied.message}; this call accepts any of: {', '.join(self.scopes)}")
        tokens.touch(token)
        self.state.actor = token.name
        return token.name


def require(*scopes: str) -> Callable[..., Any]:
    """A dependency taking the bearer token for any of ``scopes``; `DatabaseRoute` checks it (see there).

    A request without a token is refused here at once, before its body is even validated.
    """

    async def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Credential:
        if credentials is None:
            tokens.authenticate(None, scopes[0])  # raises the 401 with its how-to
        return Credential(credentials.credentials, scopes, request.state)

    dependency.__name__ = f"require_{'_or_'.join(scopes)}"
    return dependency


# Sync endpoints receive the actor's name (checked by DatabaseRoute); async ones the Credential to check.
Reader = Annotated[str, Depends(require("read"))]
Writer = Annotated[str, Depends(require("write"))]
Ingester = Annotated[str, Depends(require("ingest", "write"))]
Admin = Annotated[str, Depends(require("admin"))]
WriterCredential = Annotated[Credential, Depends(require("write"))]

IfMatch = Annotated[
    str | None,
    Header(
        max_length=64,
        description='The ETag of the version you read, e.g. `"3"` (`W/"3"` and `*` are accepted too).',
    ),
]


def version_from(if_match: str | None, body_version: int | None, *, required: bool) -> int | None:
    """The version a write is conditional on, from ``If-Match`` or the body's ``version``.

    ``If-Match: *`` means "whatever is stored" (no check). Missing both raises 428 when ``required``.
    """
    header_version: int | None = None
    if if_match is not None:
        text = if_match.strip()
        if text == "*":
            return body_version
        text = text.removeprefix("W/").strip('"')
        if not (text.isascii() and text.isdigit()):  # isdigit alone accepts "²", which int() refuses
            raise ValidationError(
                f'If-Match must be the ETag of the report, like "3"; got {if_match[:40]!r}', field="If-Match"
            )
        header_version = int(text)
    if header_version is not None and body_version is not None and header_version != body_version:
        raise ValidationError(
            f"If-Match names version {header_version} but the body says version {body_version}; send one",
            field="version",
        )
    version = header_version if header_version is not None else body_version
    if version is None and required:
        raise PreconditionRequired(
            'this change must say which version it is based on: send `If-Match: "<version>"` '
            "(the ETag of your GET) or a `version` field; `If-Match: *` overrides the check"
        )
    return version
