"""Listing: filters (open, severity, needs_human, telemetry ids), keyset pages, strict parameters."""

from __future__ import annotations

from bugdesk import service
from bugdesk.service import runs


def _post(live, new_report, **fields) -> dict:
    return live.submit(new_report(**fields))


def test_status_open_and_severity_filters(live, new_report):
    critical = _post(live, new_report, severity="critical")
    low = _post(live, new_report, severity="low")
    done = _post(live, new_report, severity="critical")
    live.client().post(f"/api/bug-reports/{done['number']}/resolve", json={})
    client = live.client("reader")
    open_numbers = [r["number"] for r in client.get("/api/bug-reports", params={"status": "open"}).json()["items"]]
    assert sorted(open_numbers) == sorted([critical["number"], low["number"]])
    crit = client.get("/api/bug-reports", params=[("status", "open"), ("severity", "critical")]).json()["items"]
    assert [r["number"] for r in crit] == [critical["number"]]
    both = client.get("/api/bug-reports", params=[("severity", "critical"), ("severity", "low")]).json()["items"]
    assert len(both) == 3


def test_needs_human_lists_reports_flagged_after_failed_agent_runs(live, new_report):
    flagged = _post(live, new_report)
    _post(live, new_report)
    for _ in range(live.settings.max_agent_attempts):
        run = runs.start_agent_run(flagged["number"], "bot")
        runs.finish_agent_run(run.id, "failed", settings=live.settings)
    items = live.client("reader").get("/api/bug-reports", params={"needs_human": "true"}).json()["items"]
    assert [r["number"] for r in items] == [flagged["number"]]
    assert items[0]["needs_human"] is True


def test_reports_are_found_by_trace_request_and_release(live, new_report):
    target = _post(live, new_report, trace_id="b" * 32, request_id="req-9", release_sha="abcdef0123")
    _post(live, new_report)
    client = live.client("reader")
    for params in ({"trace_id": "B" * 32}, {"request_id": "req-9"}, {"release_sha": "abcdef0123"}):
        items = client.get("/api/bug-reports", params=params).json()["items"]
        assert [r["number"] for r in items] == [target["number"]], params


def test_duplicates_are_hidden_unless_asked_for(live, new_report):
    data = new_report()
    client = live.client("agent")
    canonical = live.submit(data)
    client.post("/api/bug-reports", json=data)
    reader = live.client("reader")
    assert len(reader.get("/api/bug-reports").json()["items"]) == 1
    assert len(reader.get("/api/bug-reports", params={"include_duplicates": "true"}).json()["items"]) == 2
    dups = reader.get("/api/bug-reports", params={"duplicates_of": canonical["number"]}).json()["items"]
    assert [r["duplicate_of_id"] for r in dups] == [canonical["id"]]


def test_pages_follow_the_cursor_without_gaps_or_repeats(live, new_report):
    numbers = [service.create_report(new_report(), "seed").report.number for _ in range(7)]
    client = live.client("reader")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "number", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/bug-reports", params=params).json()
        seen += [r["number"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(numbers)


def test_unknown_parameters_and_bad_cursors_are_422(live):
    client = live.client("reader")
    typo = client.get("/api/bug-reports", params={"stauts": "open"})
    assert typo.status_code == 422 and typo.json()["field"] == "stauts"
    assert client.get("/api/bug-reports", params={"severity": "urgent"}).status_code == 422
    assert client.get("/api/bug-reports", params={"cursor": "garbage"}).json()["field"] == "cursor"
    assert client.get("/api/bug-reports", params={"limit": 0}).status_code == 422
