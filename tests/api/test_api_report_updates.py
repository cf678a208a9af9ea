"""Conditional updates: If-Match / version, 428, 412, 409 with allowed targets, triage vs status moves."""

from __future__ import annotations

from bugdesk.models import BugReport, BugReportEvent


def _create(live, new_report, **fields) -> dict:
    return live.submit(new_report(**fields))


def test_get_returns_the_version_as_etag(live, new_report):
    report = _create(live, new_report)
    response = live.client("reader").get(f"/api/bug-reports/{report['number']}")
    assert response.headers["etag"] == '"1"' and response.json()["version"] == 1


def test_a_patch_without_a_version_is_428_and_changes_nothing(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(f"/api/bug-reports/{report['id']}", json={"severity": "low"})
    assert response.status_code == 428
    assert "If-Match" in response.json()["detail"]
    assert BugReport.get(BugReport.number == report["number"]).severity == "high"


def test_a_patch_with_if_match_applies_and_returns_the_next_etag(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(
        f"/api/bug-reports/{report['number']}", json={"severity": "critical"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["severity"] == "critical" and body["status"] == "triaged"
    assert response.headers["etag"] == f'"{body["version"]}"' == '"2"'


def test_a_stale_version_is_412_with_the_current_version_and_changes_nothing(live, new_report):
    report = _create(live, new_report)
    client = live.client()
    client.patch(f"/api/bug-reports/{report['number']}", json={"severity": "low", "version": 1})
    response = client.patch(f"/api/bug-reports/{report['number']}", json={"severity": "critical", "version": 1})
    assert response.status_code == 412
    assert response.json()["current_version"] == 2
    assert BugReport.get(BugReport.number == report["number"]).severity == "low"


def test_a_weak_etag_and_the_body_version_are_accepted(live, new_report):
    report = _create(live, new_report)
    client = live.client()
    assert client.patch(
        f"/api/bug-reports/{report['number']}", json={"component": "web"}, headers={"If-Match": 'W/"1"'}
    ).is_success
    assert client.patch(f"/api/bug-reports/{report['number']}", json={"component": "api", "version": 2}).is_success


def test_if_match_and_a_different_body_version_are_refused(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(
        f"/api/bug-reports/{report['number']}", json={"component": "web", "version": 2}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 422 and response.json()["field"] == "version"


def test_an_illegal_transition_is_409_naming_the_allowed_targets(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(
        f"/api/bug-reports/{report['number']}", json={"status": "awaiting_verification", "version": 1}
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["allowed"] == ["triaged", "in_progress", "resolved", "closed"]
    assert "triaged" in problem["detail"]


def test_closing_with_a_reason_and_a_note_writes_one_event(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(
        f"/api/bug-reports/{report['number']}",
        json={"status": "closed", "close_reason": "wont_fix", "note": "by design", "version": 1},
    )
    assert response.status_code == 200
    assert response.json()["close_reason"] == "wont_fix"
    event = BugReportEvent.select().order_by(BugReportEvent.id.desc()).first()
    assert (event.kind, event.body, event.actor) == ("status_changed", "by design", "agent")


def test_resolving_by_patch_records_notes_and_commits(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(
        f"/api/bug-reports/{report['number']}",
        json={"status": "resolved", "resolution_notes": "fixed", "resolution_commits": ["abcdef1"], "version": 1},
    )
    body = response.json()
    assert body["status"] == "resolved" and body["resolution_commits"] == ["abcdef1"]
    assert body["resolution_notes"] == "fixed" and body["resolved_at"] is not None


def test_triage_fields_and_a_status_move_go_in_separate_requests(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(
        f"/api/bug-reports/{report['number']}", json={"severity": "low", "status": "closed", "version": 1}
    )
    assert response.status_code == 422 and response.json()["field"] == "status"


def test_resolution_fields_without_status_resolved_are_refused(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(
        f"/api/bug-reports/{report['number']}", json={"status": "closed", "resolution_notes": "x", "version": 1}
    )
    assert response.status_code == 422 and response.json()["field"] == "resolution_notes"


def test_an_empty_patch_is_refused(live, new_report):
    report = _create(live, new_report)
    response = live.client().patch(f"/api/bug-reports/{report['number']}", json={"version": 1})
    assert response.status_code == 422


def test_null_assignee_unassigns(live, new_report):
    report = _create(live, new_report, assignee_id="ann")
    response = live.client().patch(f"/api/bug-reports/{report['number']}", json={"assignee_id": None, "version": 1})
    assert response.json()["assignee_id"] is None


def test_a_resolved_report_reopens_and_cannot_be_resolved_twice(live, new_report):
    report = _create(live, new_report)
    client = live.client()
    assert client.post(f"/api/bug-reports/{report['number']}/resolve", json={"commits": ["abcdef1"]}).is_success
    again = client.post(f"/api/bug-reports/{report['number']}/resolve", json={})
    assert again.status_code == 409 and "reopen" in again.json()["detail"]
    reopened = client.post(f"/api/bug-reports/{report['number']}/reopen", json={"reason": "came back"})
    assert reopened.json()["status"] == "triaged"


def test_an_unknown_report_is_404_and_a_malformed_ref_is_422(live):
    client = live.client("reader")
    assert client.get("/api/bug-reports/999").status_code == 404
    assert client.get("/api/bug-reports/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get("/api/bug-reports/not-a-ref").status_code == 422
