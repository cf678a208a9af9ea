"""Submitting reports over HTTP: status codes, grouping, idempotency, telemetry headers, validation, body limit."""

from __future__ import annotations

from dataclasses import replace

from apilive import LiveServer, run_server

from bugdesk.models import BugReport

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_a_new_report_is_201_with_its_location_and_etag(live, new_report):
    response = live.client("ingest").post("/api/bug-reports", json=new_report(severity="critical"))
    assert response.status_code == 201
    body = response.json()
    assert body["deduplicated"] is False and body["replayed"] is False and body["regressed"] is False
    assert body["canonical"]["number"] == body["submission"]["number"] == 1
    assert body["canonical"]["status"] == "new" and body["canonical"]["version"] == 1
    assert response.headers["location"] == "/api/bug-reports/1"
    assert response.headers["etag"] == '"1"'
    stored = BugReport.get(BugReport.number == 1)
    assert stored.severity == "critical" and stored.duplicate_of_id is None


def test_a_second_occurrence_is_200_with_the_canonical_and_deduplicated(live, new_report):
    client = live.client("ingest")
    data = new_report()
    first = client.post("/api/bug-reports", json=data).json()
    data["stacktrace"] = data["stacktrace"].replace("line 88", "line 91")
    second = client.post("/api/bug-reports", json=data)
    assert second.status_code == 200
    body = second.json()
    assert body["deduplicated"] is True
    assert body["canonical"] == first["canonical"]
    assert body["submission"]["number"] == 2
    assert second.headers["location"] == f"/api/bug-reports/{first['canonical']['number']}"
    stored = BugReport.get(BugReport.number == 2)
    assert str(stored.duplicate_of_id) == first["canonical"]["id"]


def test_a_replayed_idempotency_key_returns_the_first_answer_and_creates_nothing(live, new_report):
    client = live.client("ingest")
    data = new_report()
    first = client.post("/api/bug-reports", json=data, headers={"Idempotency-Key": "k-1"})
    again = client.post("/api/bug-reports", json=data, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["replayed"] is True and again.headers["idempotent-replayed"] == "true"
    assert again.json()["canonical"] == first.json()["canonical"]
    assert again.json()["submission"] == first.json()["submission"]
    assert BugReport.select().count() == 1


def test_a_replayed_duplicate_answers_200_again(live, new_report):
    client = live.client("ingest")
    data = new_report()
    client.post("/api/bug-reports", json=data)
    first = client.post("/api/bug-reports", json=data, headers={"Idempotency-Key": "dup"})
    again = client.post("/api/bug-reports", json=data, headers={"Idempotency-Key": "dup"})
    assert first.status_code == again.status_code == 200
    assert again.json()["deduplicated"] is True and again.json()["replayed"] is True
    assert again.json()["submission"] == first.json()["submission"]
    assert BugReport.select().count() == 2


def test_traceparent_and_request_id_headers_fill_what_the_body_lacks(live, new_report):
    headers = {"traceparent": TRACEPARENT, "X-Request-ID": "req-abc-1"}
    report = live.submit(new_report(), who="ingest", headers=headers)
    assert report["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert report["request_id"] == "req-abc-1"


def test_explicit_payload_values_win_over_headers(live, new_report):
    data = new_report(trace_id="a" * 32, request_id="from-body")
    headers = {"traceparent": TRACEPARENT, "X-Request-ID": "from-header"}
    report = live.submit(data, who="ingest", headers=headers)
    assert report["trace_id"] == "a" * 32 and report["request_id"] == "from-body"


def test_an_invalid_traceparent_is_ignored_rather_than_stored(live, new_report):
    headers = {"traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}
    assert live.submit(new_report(), who="ingest", headers=headers)["trace_id"] is None


def test_the_server_release_fills_release_sha_unless_the_payload_has_one(api_settings, new_report):
    with run_server(replace(api_settings, release="abcdef1234567")) as url:
        server = LiveServer(url=url, settings=api_settings)
        server.add_token("admin", "admin")
        filled = server.submit(new_report(), who="admin")
        kept = server.submit(new_report(release_sha="1234567abcdef"), who="admin")
        for client in server.clients:
            client.close()
    assert filled["release_sha"] == "abcdef1234567"
    assert kept["release_sha"] == "1234567abcdef"


def test_a_request_id_is_echoed_or_made_up(live, new_report):
    client = live.client("ingest")
    echoed = client.post("/api/bug-reports", json=new_report(), headers={"X-Request-ID": "mine-1"})
    assert echoed.headers["x-request-id"] == "mine-1"
    made_up = client.get("/api/health")
    assert len(made_up.headers["x-request-id"]) == 32


def test_an_unknown_severity_is_422_problem_json_naming_the_field(live, new_report):
    response = live.client("ingest").post("/api/bug-reports", json=new_report(severity="urgent"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == "severity" and problem["status"] == 422
    assert "critical" in problem["detail"]
    assert BugReport.select().count() == 0


def test_an_unknown_field_is_refused(live, new_report):
    response = live.client("ingest").post("/api/bug-reports", json=new_report(severty="high"))
    assert response.status_code == 422 and response.json()["field"] == "severty"


def test_service_validation_errors_keep_their_field(live, new_report):
    response = live.client("ingest").post("/api/bug-reports", json=new_report(trace_id="not-hex"))
    assert response.status_code == 422
    assert response.json()["type"] == "urn:bugdesk:problem:validation-error"
    assert response.json()["field"] == "trace_id"


def test_malformed_json_is_a_problem_not_a_crash(live):
    response = live.client("ingest").post(
        "/api/bug-reports", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_an_oversized_body_is_413_before_parsing(live, new_report):
    limit = live.settings.api_body_limit_bytes
    response = live.client("ingest").post("/api/bug-reports", json=new_report(description="x" * (limit + 1)))
    assert response.status_code == 413
    assert response.json()["type"] == "urn:bugdesk:problem:request-body-too-large"
    assert BugReport.select().count() == 0


def test_an_oversized_chunked_body_is_413_too(live, new_report):
    limit = live.settings.api_body_limit_bytes

    def chunks():
        yield b'{"title": "big", "description": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = live.client("ingest").post(
        "/api/bug-reports", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert BugReport.select().count() == 0


def test_a_small_chunked_body_is_accepted(live, new_report):
    import json

    raw = json.dumps(new_report()).encode()
    response = live.client("ingest").post(
        "/api/bug-reports", content=iter([raw[:10], raw[10:]]), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201
