"""Admin (merge, split, releases, tokens) and meta (health, status, metrics) endpoints."""

from __future__ import annotations

from datetime import UTC, datetime

from bugdesk import service
from bugdesk.models import BugReport


def test_merge_and_split_need_the_admin_scope(live, new_report):
    a = service.create_report(new_report(), "seed").report
    b = service.create_report(new_report(), "seed").report
    assert (
        live.client("agent").post(f"/api/bug-reports/{b.number}/merge", json={"into": str(a.number)}).status_code == 403
    )
    merged = live.client("admin").post(f"/api/bug-reports/{b.number}/merge", json={"into": str(a.number)})
    assert merged.status_code == 200 and merged.json()["number"] == a.number
    assert BugReport.get_by_id(b.id).duplicate_of_id == a.id
    split = live.client("admin").post(f"/api/bug-reports/{b.number}/split")
    assert split.status_code == 200 and split.json()["duplicate_of_id"] is None


def test_merging_a_group_into_itself_is_422(live, new_report):
    a = service.create_report(new_report(), "seed").report
    response = live.client("admin").post(f"/api/bug-reports/{a.number}/merge", json={"into": str(a.id)})
    assert response.status_code == 422


def test_releases_are_recorded(live):
    response = live.client().post(
        "/api/releases", json={"sha": "ABCDEF1234", "version": "1.2.0", "deployed_at": "2026-01-02T03:04:05Z"}
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["sha"], body["version"], body["environment"]) == ("abcdef1234", "1.2.0", "production")
    assert datetime.fromisoformat(body["deployed_at"]) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_tokens_are_created_listed_and_revoked_by_an_admin(live):
    admin = live.client("admin")
    created = admin.post("/api/tokens", json={"name": "ci-bot", "scopes": ["ingest"]})
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert (
        live.client(None)
        .post("/api/bug-reports", json={"title": "from ci"}, headers={"Authorization": f"Bearer {secret}"})
        .status_code
        == 201
    )
    listed = {t["name"]: t for t in admin.get("/api/tokens").json()}
    assert listed["ci-bot"]["scopes"] == ["ingest"] and "secret" not in listed["ci-bot"]
    assert admin.delete("/api/tokens/ci-bot").json()["revoked_at"] is not None
    assert live.client(None).get("/api/health", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert admin.delete("/api/tokens/nobody").status_code == 404


def test_status_summarises_counts_claims_and_needs_human(live, new_report):
    service.create_report(new_report(severity="critical"), "seed")
    service.claim_next("bot")
    summary = live.client("reader").get("/api/status").json()
    assert summary["open"] == 1 and summary["active_claims"] == 1
    assert summary["counts"]["in_progress"]["critical"] == 1 and summary["needs_human"] == 0


def test_metrics_expose_report_gauges_and_request_latency(live, new_report):
    client = live.client("agent")
    client.post("/api/bug-reports", json=new_report(severity="low"))
    client.get("/api/bug-reports/12345")
    response = client.get("/api/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert 'bugdesk_reports{status="new",severity="low"} 1' in text
    assert "bugdesk_open_reports 1" in text
    assert "# TYPE bugdesk_http_request_duration_seconds histogram" in text
    assert 'route="/api/bug-reports",status="201",le="+Inf"} 1' in text
    assert 'route="/api/bug-reports/{ref}",status="404"' in text
