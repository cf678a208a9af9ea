"""Helpers for the dashboard tests: a small database with fixed data, a fixed clock, and waiting for workers.

Everything the dashboard shows must be the same on every run for the snapshots to be
stable, so the reports are created with explicit times (``created_at`` and ``now``)
and fixed telemetry, and the app gets the same fixed clock.
"""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import WorkerCancelled

from bugdesk import db as dbmod
from bugdesk import service
from bugdesk.config import Settings

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
"""The dashboard's fixed clock in every test."""

TRACE = """Traceback (most recent call last):
  File "/srv/app/releases/4f1c2a/app/checkout/views.py", line 88, in post
    order = build_order(request.user, cart)
  File "/srv/app/releases/4f1c2a/app/checkout/cart.py", line 141, in build_order
    total = cart_totals(cart)["cart_id"]
KeyError: 'cart_id'"""


def _at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def build_fixed_db(path: Path) -> Settings:
    """Seven reports in known states; returns settings pointing at them.

    #1 critical new (2h old, one duplicate #5, a note), #2 high triaged and breached, #3 medium
    in progress claimed by an agent, #4 low new, #6 resolved, #7 medium awaiting verification.
    """
    settings = Settings(database_url=f"sqlite:///{path}")
    with dbmod.connected(settings.database_url, settings):

        def create(hours_ago: float, **data) -> int:
            data.setdefault("component", "checkout")
            data["created_at"] = _at(hours_ago)
            return service.create_report(data, "ingest", settings=settings, now=_at(hours_ago)).report.number

        telemetry = {
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "request_id": "req_7f3a9c",
            "release_sha": "a1b2c3d4e5f6",
            "environment": "production",
            "route": "/api/checkout",
        }
        one = create(2, title="Checkout fails with KeyError 'cart_id'", severity="critical", stacktrace=TRACE,
                     description="Customers cannot pay when the cart was restored from a previous session.",
                     **telemetry)  # fmt: skip
        two = create(30, title="Search times out for long queries", severity="high", component="search")
        three = create(20, title="Avatar upload returns 500", severity="medium", component="profile")
        create(5, title="Typo on the settings page", severity="low", component="profile")
        create(1, title="Checkout fails with KeyError 'cart_id'", severity="critical", stacktrace=TRACE, **telemetry)
        six = create(80, title="Invoice PDF shows wrong totals", severity="high", component="billing")
        seven = create(50, title="Password reset email arrives twice", severity="medium", component="auth")
        service.add_note(one, "alice", "Reproduced with a restored cart.", now=_at(0.5))
        service.triage(two, "alice", version=None, assignee_id="alice", settings=settings, now=_at(29))
        service.claim(three, "fixbot", lease_seconds=3600, settings=settings, now=_at(0.2))
        service.resolve(six, "bob", notes="Rounding fixed.", commits=["abcdef1"], now=_at(10))
        service.move(seven, "in_progress", "bob", version=None, now=_at(40))
        service.move(seven, "awaiting_verification", "bob", version=None, now=_at(30))
    return settings


async def settle(pilot: Pilot) -> None:
    """Wait until the dashboard is idle: workers done and their messages handled (loads chain into more loads).

    An action flow waiting for the user in a dialog counts as idle.
    """
    app = pilot.app

    def busy() -> list:
        waiting_for_user = isinstance(app.screen, ModalScreen)
        return [w for w in app.workers if w.is_running and not (waiting_for_user and w.group == "action")]

    for _ in range(100):
        await pilot.pause()
        running = busy()
        if not running:
            await pilot.pause()
            if not busy():
                return
            continue
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete(running)
    raise AssertionError(f"the dashboard did not settle: {busy()}")


def text_of(widget: Static) -> str:
    """What a Static shows, as plain text (Rich renderables rendered at 160 columns)."""
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()
