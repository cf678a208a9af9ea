"""The official ``sentry-sdk`` pointed at a live bugdesk server: its reports arrive complete and grouped.

The application runs in a subprocess, as a real service would: ``sentry_sdk.init`` patches
libraries process-wide (logging, threading, web frameworks), which must not leak into the
test process that hosts the server. It serves two requests through the SDK's WSGI middleware
(a traced transaction with a request URL), one raising a chained exception twice, and sends a
log message; ``before_send`` prints what the SDK sent so the test can look each report up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bugdesk.db import database
from bugdesk.models import BugReport, BugReportDedup

APP = r"""
import json, sys
import sentry_sdk
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware
from wsgiref.util import setup_testing_defaults

sent = []

def before_send(event, hint):
    values = (event.get("exception") or {}).get("values") or [{}]
    sent.append({"event_id": event["event_id"], "type": values[-1].get("type"),
                 "trace_id": event["contexts"]["trace"]["trace_id"]})
    return event

sentry_sdk.init(dsn=sys.argv[1], release="shop@1.4.2", environment="staging", traces_sample_rate=1.0,
                before_send=before_send)


class PaymentError(Exception):
    pass


def charge(order_id):
    prices = {}
    return prices[order_id]


def checkout(order_id):
    try:
        charge(order_id)
    except KeyError as exc:
        raise PaymentError(f"cannot charge order {order_id}") from exc


def app(environ, start_response):
    if environ["PATH_INFO"].startswith("/orders/"):
        checkout(environ["PATH_INFO"].rsplit("/", 1)[1])
    start_response("200 OK", [])
    return [b"ok"]


def request(path):
    environ = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, REQUEST_METHOD="POST", HTTP_X_REQUEST_ID="req-" + path.rsplit("/", 1)[1])
    try:
        list(SentryWsgiMiddleware(app)(environ, lambda *args: None))
    except PaymentError:
        pass


request("/orders/8812")
request("/orders/9913")
with sentry_sdk.start_transaction(name="nightly-reconcile", op="task"):
    sentry_sdk.capture_message("ledger out of balance by 12 cents", level="warning")
sentry_sdk.flush(timeout=15)
print(json.dumps(sent))
"""


def run_app(dsn: str, tmp_path: Path) -> list[dict]:
    script = tmp_path / "shop_app.py"
    script.write_text(APP)
    done = subprocess.run(
        [sys.executable, str(script), dsn], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_sdk_events_become_grouped_reports(live, dsn, tmp_path):
    sent = run_app(dsn, tmp_path)
    assert [s["type"] for s in sent] == ["PaymentError", "PaymentError", None]

    with database.connection_context():
        reports = {r.idempotency_key: r for r in BugReport.select()}
        assert len(reports) == 3, "every event the SDK sent is stored once"
        first, second, message = (reports[f"sentry:{s['event_id']}"] for s in sent)

        assert first.exception_type == "PaymentError"
        assert first.title == "PaymentError: cannot charge order 8812"
        assert first.source == "system" and first.severity == "high"
        assert first.environment == "staging"
        assert first.details["release"] == "shop@1.4.2"  # a version, not a sha
        assert first.trace_id == sent[0]["trace_id"]
        assert first.request_id == "req-8812"
        assert first.route == "POST /orders/{id}"
        assert first.details["url"].endswith("/orders/8812")
        # The raised exception's frames, outermost first, with in_app; the chain rendered as Python would.
        functions = [f["function"] for f in first.details["frames"]]
        assert functions[-2:] == ["app", "checkout"]
        assert all(f["in_app"] for f in first.details["frames"] if f["filename"].endswith("shop_app.py"))
        assert [c["type"] for c in first.details["chain"]] == ["KeyError", "PaymentError"]
        text = first.stacktrace
        assert text.index("KeyError: '8812'") < text.index("PaymentError: cannot charge order 8812")
        assert "in charge" in text and ("During handling" in text or "direct cause" in text)

        # The same bug again joined the first report's group.
        assert first.duplicate_of_id is None
        assert second.duplicate_of_id == first.id
        assert second.trace_id == sent[1]["trace_id"] != first.trace_id
        dedup = BugReportDedup.get(BugReportDedup.canonical == first.id)
        assert dedup.occurrences == 2

        # A log message became a report of its own, titled by the message.
        assert message.title == "ledger out of balance by 12 cents"
        assert message.exception_type is None and message.severity == "medium"
        assert message.trace_id == sent[2]["trace_id"]
        assert message.details["transaction"] == "nightly-reconcile"


@pytest.mark.slow
def test_sdk_retry_of_a_stored_event_is_not_stored_twice(live, dsn, tmp_path):
    """Replaying the SDK's exact envelope (as its retry after a lost answer would) stores nothing new."""
    import httpx

    sent = run_app(dsn, tmp_path)
    with database.connection_context():
        before = BugReport.select().count()
        occurrences = BugReportDedup.select().where(BugReportDedup.occurrences == 2).count()
    body = json.dumps({"event_id": sent[0]["event_id"], "exception": {"values": [{"type": "X", "value": "y"}]}})
    envelope = json.dumps({"event_id": sent[0]["event_id"]}) + "\n" + '{"type":"event"}\n' + body + "\n"
    answer = httpx.post(
        f"{live.url}/api/1/envelope/",
        content=envelope,
        headers={"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={live.secrets['ingest']}"},
    )
    assert answer.status_code == 200 and answer.json() == {"id": sent[0]["event_id"]}
    with database.connection_context():
        assert BugReport.select().count() == before
        assert BugReportDedup.select().where(BugReportDedup.occurrences == 2).count() == occurrences
