"""Bearer tokens and scopes: who may call what, and what the access log never contains."""

from __future__ import annotations

import logging

from apilive import wait_until

from bugdesk.service import tokens


def test_a_request_without_a_token_is_401_with_a_bearer_challenge(live):
    response = live.client(None).get("/api/bug-reports")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_a_wrong_token_is_401(live):
    response = live.client(None).get("/api/bug-reports", headers={"Authorization": "Bearer bd_nope"})
    assert response.status_code == 401 and response.json()["type"] == "urn:bugdesk:problem:auth-error"


def test_a_revoked_token_stops_working_at_once(live):
    client = live.client("reader")
    assert client.get("/api/bug-reports").status_code == 200
    tokens.revoke_token("reader")
    assert client.get("/api/bug-reports").status_code == 401


# (token, method, path, body, allowed)
SCOPE_CASES = [
    ("reader", "GET", "/api/bug-reports", None, True),
    ("reader", "POST", "/api/bug-reports", {"title": "x"}, False),
    ("ingest", "POST", "/api/bug-reports", {"title": "x"}, True),
    ("ingest", "GET", "/api/bug-reports", None, False),
    ("ingest", "GET", "/api/status", None, False),
    ("agent", "POST", "/api/bug-reports", {"title": "x"}, True),
    ("agent", "GET", "/api/tokens", None, False),
    ("admin", "GET", "/api/tokens", None, True),
    ("reader", "POST", "/api/claims/next", {}, False),
]


def test_scopes_decide_what_a_token_may_do(live):
    for who, method, path, body, allowed in SCOPE_CASES:
        response = live.client(who).request(method, path, json=body)
        case = f"{who} {method} {path}"
        if allowed:
            assert response.status_code < 400, f"{case}: {response.text}"
        else:
            assert response.status_code == 403, case
            assert response.json()["type"] == "urn:bugdesk:problem:scope-error", case


def test_health_needs_no_token(live):
    body = live.client(None).get("/api/health").json()
    assert body["status"] == "ok" and body["database"] in ("sqlite", "postgresql")


def _access_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bugdesk.access"]


def test_the_access_log_names_the_actor_and_never_the_token(live, caplog, new_report):
    secret = live.secrets["agent"]
    with caplog.at_level(logging.INFO, logger="bugdesk.access"):
        live.client("agent").post("/api/bug-reports?x=1", json=new_report(), headers={"X-Request-ID": "log-me"})
        live.client(None).get("/api/bug-reports", headers={"Authorization": f"Bearer {secret}x"})
        # The server logs after the response has gone out: wait for both lines.
        wait_until(lambda: len(_access_lines(caplog)) >= 2, what="access log lines")
    lines = _access_lines(caplog)
    assert any('"actor": "agent"' in line and '"request_id": "log-me"' in line for line in lines)
    assert any('"status": 401' in line for line in lines)
    assert all(secret not in line and "Bearer" not in line and "x=1" not in line for line in lines)
