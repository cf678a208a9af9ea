"""Admission control: a bounded number of requests in flight per worker; past it, an immediate 429 with Retry-After.

An overloaded server that accepts everything only moves the queue inside: every request waits
longer until clients time out, and a request that timed out may still have been stored. So each
worker admits at most ``api_max_in_flight`` requests at once; of those at most
``api_max_writes_in_flight`` may be writes (the rest is kept for reads, so an ingest storm does not
shed an agent's GETs), and of the writes at most ``api_max_ingest_in_flight`` may be report
submissions (``POST /api/bug-reports``, the Sentry ingest paths: the rest is kept for the agents'
claims, notes and resolves). A request over its bound waits up to ``api_queue_wait_ms`` for a slot
(at most ``api_max_in_flight`` requests wait; free slots go to reads first, submissions last), then
gets ``429`` problem+json (``urn:bugdesk:problem:overloaded``) with ``Retry-After``, before its body
is read.

A count of slots does not say how long the work behind them takes, and that grows with the database
and with what else the worker does. So a submission is also shed at once, slot or not, while the
oldest submission waiting in the SQLite write queue has waited longer than
``api_ingest_queue_target_ms`` (the CoDel idea: act on the time a queue holds work, not its length).
Under a storm the writer then works through a short queue instead of a standing one: accepted
submissions answer within about the target plus a batch. Off by default: acting on the oldest
waiter's age alone also sheds when another process holds SQLite's lock for a moment (see config).

429 rather than 503: shedding is the designed answer to more load than the worker can take, not a
fault, so a 5xx keeps meaning that something broke (the database not answering is still a 503); and
the Sentry SDKs back off on a 429 (reading ``X-Sentry-Rate-Limits``, sent on the ingest paths) but
drop the event on a 503.

An admitted request is never cut short: the bound is what keeps its wait in the SQLite write queue
short. ``/api/health`` and ``/api/metrics`` are not counted, so monitoring sees a busy server as up
and can read how much it sheds. Pure ASGI and only ever touched on the event loop thread, so the
counters need no lock.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bugdesk.api.middleware import ASGIApp, Message, Receive, Scope, Send, problem_bytes

# Not counted: liveness probes must answer while the server sheds, and metrics must show the shedding.
EXEMPT_PATHS = frozenset({"/api/health", "/api/metrics"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POST /api/{project_id}/envelope/ and /store/ (bugdesk/api/routes/sentry.py).
SENTRY_INGEST = re.compile(r"^/api/[^/]+/(envelope|store)/$")
RETRY_AFTER_SECONDS = 1


# The kinds of request, each bounded inside the next: ingest (report submissions) is a kind of write, a write a
# kind of request. Free slots go to waiters in this order: reads are short and what agents wait on; an agent's
# claim, note or resolve should not queue behind a flood of submissions.
KINDS = ("read", "write", "ingest")


def kind_of(method: str, path: str) -> str:
    if method in READ_METHODS:
        return "read"
    if method == "POST" and (path == "/api/bug-reports" or SENTRY_INGEST.match(path)):
        return "ingest"
    return "write"


@dataclass
class AdmissionState:
    """This worker's bounds and counters; `bugdesk.api.routes.meta` renders them in ``/api/metrics``."""

    max_in_flight: int
    max_writes: int
    max_ingest: int
    wait_seconds: float
    # Submissions are shed while ``queue_delay()`` (seconds the write queue's oldest submission has waited)
    # exceeds this; 0 turns it off.
    queue_target: float = 0.0
    queue_delay: Callable[[], float] = lambda: 0.0
    in_flight: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    shed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    waited: int = 0  # admitted after waiting for a slot
    waiters: dict[str, deque[asyncio.Future[None]]] = field(default_factory=lambda: {k: deque() for k in KINDS})

    @property
    def enabled(self) -> bool:
        return self.max_in_flight > 0

    @property
    def total(self) -> int:
        return sum(self.in_flight.values())

    @property
    def queued(self) -> int:
        return sum(len(w) for w in self.waiters.values())

    def behind(self) -> bool:
        """True while the write queue holds submissions longer than the target: new submissions are shed."""
        return self.queue_target > 0 and self.queue_delay() > self.queue_target

    def fits(self, kind: str) -> bool:
        if self.total >= self.max_in_flight:
            return False
        if kind == "read":
            return True
        if self.in_flight["write"] + self.in_flight["ingest"] >= self.max_writes:
            return False
        return kind == "write" or self.in_flight["ingest"] < self.max_ingest

    def bound_of(self, kind: str) -> str:
        """What a shed request of ``kind`` ran into, for the problem's detail."""
        if kind == "ingest" and self.behind():
            target = round(self.queue_target * 1000)
            return f"submissions queued for writing longer than {target} ms (setting api_ingest_queue_target_ms)"
        if kind == "ingest" and self.in_flight["ingest"] >= self.max_ingest:
            return f"{self.max_ingest} submissions (setting api_max_ingest_in_flight)"
        if kind != "read" and self.in_flight["write"] + self.in_flight["ingest"] >= self.max_writes:
            return f"{self.max_writes} writes (setting api_max_writes_in_flight)"
        return f"{self.max_in_flight} requests (setting api_max_in_flight)"

    def enter(self, kind: str) -> None:
        self.in_flight[kind] += 1

    def leave(self, kind: str) -> None:
        self.in_flight[kind] -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Give free slots to waiters: reads first, then other writes, then submissions (see `KINDS`)."""
        for kind in KINDS:
            waiters = self.waiters[kind]
            if kind == "ingest" and waiters and self.behind():
                continue  # they wait on, and are shed at the end of their wait unless the queue has caught up
            while waiters and self.fits(kind):
                future = waiters.popleft()
                self.enter(kind)
                future.set_result(None)

    async def admit(self, kind: str) -> bool:
        """Take a slot now, or wait up to ``wait_seconds`` for one; False when the request is to be shed."""
        if kind == "ingest" and self.behind():
            return False
        waiters = self.waiters[kind]
        # Waiters hold only pending futures (each removes its own when its wait ends), so a free slot with
        # nobody of this kind waiting is taken at once, and an arrival never overtakes an earlier waiter.
        if not waiters and self.fits(kind):
            self.enter(kind)
            return True
        if self.wait_seconds <= 0 or self.queued >= self.max_in_flight:
            return False
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(future)
        try:
            # asyncio.wait, not wait_for: it never cancels the future, so a slot handed over at the deadline
            # is seen below (set_result and this check both run on the event loop thread).
            await asyncio.wait((future,), timeout=self.wait_seconds)
        except BaseException:
            if future.done():
                self.leave(kind)  # handed a slot just as the client went away: give it back
            else:
                waiters.remove(future)
            raise
        if future.done():
            self.waited += 1
            return True
        waiters.remove(future)
        return False


class AdmissionMiddleware:
    """Counts HTTP requests in flight against `AdmissionState` and sheds those over the bound (see the module)."""

    def __init__(self, app: ASGIApp, *, state: AdmissionState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        if scope["type"] != "http" or not state.enabled or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        kind = kind_of(scope["method"], scope["path"])
        if not await state.admit(kind):
            state.shed[kind] += 1
            await self._shed(scope, send, kind)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            state.leave(kind)

    async def _shed(self, scope: Scope, send: Send, kind: str) -> None:
        request_state = scope.setdefault("state", {})
        request_state["route_label"] = "(shed)"  # the latency histogram's route label; routing never ran
        seconds = str(RETRY_AFTER_SECONDS)
        headers: list[tuple[bytes, bytes]] = [(b"retry-after", seconds.encode())]
        if SENTRY_INGEST.match(scope["path"]) and scope["method"] == "POST":
            # What current Sentry SDKs read first: "<seconds>::organization" pauses every category.
            headers.append((b"x-sentry-rate-limits", f"{seconds}::organization".encode()))
        body = problem_bytes(
            429,
            "server busy",
            f"this worker is handling its limit of {self.state.bound_of(kind)}; nothing was done, "
            f"retry after {seconds} s",
            "overloaded",
            request_id=request_state.get("request_id"),
        )
        start: Message = {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
        # The unread request body is dropped by the server's HTTP parser; the connection stays usable.
        await send(start)
        await send({"type": "http.response.body", "body": body})
