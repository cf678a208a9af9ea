"""What an agent reads about one report: dedup group, repo path hints, events, claim, attempts, merged_into."""

from __future__ import annotations

from bugdesk import service
from bugdesk.service import dedup, runs

STACK = """Traceback (most recent call last):
  File "/srv/app/releases/3f2a/app/payments/views.py", line 41, in checkout
    charge(order)
  File "/srv/app/releases/3f2a/app/payments/charge.py", line 88, in charge
    total = prices[key]
KeyError: 'sku-1'"""


def test_the_payload_carries_the_dedup_group_and_why_it_was_grouped(live, new_report):
    client = live.client("agent")
    first = live.submit(new_report(stacktrace=STACK))
    client.post("/api/bug-reports", json=new_report(stacktrace=STACK.replace("sku-1", "sku-2")))
    payload = live.client("reader").get(f"/api/bug-reports/{first['number']}").json()
    group = payload["dedup"]
    assert group["canonical"] == {"id": first["id"], "number": first["number"]}
    assert group["occurrences"] == 2 and group["fingerprints"] == 1
    assert group["algorithm"] == "v1" and group["kind"] == "stack"
    assert group["fingerprint"] == first["fingerprint"]
    assert "KeyError" in group["signature"] and group["frames"]
    assert group["first_seen_at"] <= group["last_seen_at"]
    assert payload["merged_into"] is None


def test_repo_path_hints_come_from_the_stack_innermost_first(live, new_report):
    created = live.submit(new_report(stacktrace=STACK))
    hints = live.client("reader").get(f"/api/bug-reports/{created['number']}").json()["repo_path_hints"]
    assert hints == ["app/payments/charge.py:88", "app/payments/views.py:41"]


def test_structured_frames_give_hints_too(live, new_report):
    frames = [
        {"filename": "/app/billing/invoice.py", "module": "billing.invoice", "function": "total", "lineno": 12},
    ]
    data = new_report(stacktrace=None, details={"frames": frames})
    created = live.submit(data)
    hints = live.client("reader").get(f"/api/bug-reports/{created['number']}").json()["repo_path_hints"]
    assert hints and hints[0].endswith("invoice.py:12")


def test_events_claim_and_agent_attempts_are_in_the_payload(live, new_report):
    report = service.create_report(new_report(), "seed").report
    client = live.client()
    granted = client.post(f"/api/bug-reports/{report.number}/claim").json()
    run = client.post(f"/api/bug-reports/{report.number}/runs").json()
    client.post(f"/api/runs/{run['id']}/finish", json={"outcome": "failed", "log": "tests still red"})
    client.post(f"/api/bug-reports/{report.number}/events", json={"kind": "agent_log", "body": "tried a fix"})
    payload = client.get(f"/api/bug-reports/{report.number}").json()
    assert payload["claim"]["claimed_by"] == "agent"
    assert payload["claim"]["expires_at"] == granted["expires_at"]
    assert payload["attempts"] == {"total": 1, "failed": 1, "running": 0}
    assert payload["agent_runs"][0]["log"] == "tests still red"
    kinds = [e["kind"] for e in payload["events"]]
    assert kinds[:2] == ["created", "claimed"] and kinds[-1] == "agent_log"
    assert "claim_token_hash" not in str(payload) and granted["claim_token"] not in str(payload)


def test_a_duplicate_names_the_canonical_it_was_merged_into(live, new_report):
    a = service.create_report(new_report(), "seed").report
    b = service.create_report(new_report(), "seed").report
    dedup.merge(b.id, a.id, "human")
    payload = live.client("reader").get(f"/api/bug-reports/{b.number}").json()
    assert payload["merged_into"] == {"id": str(a.id), "number": a.number}
    assert payload["dedup"]["canonical"]["number"] == a.number


def test_needs_human_shows_in_the_payload_after_failed_runs(live, new_report):
    report = service.create_report(new_report(), "seed").report
    for _ in range(live.settings.max_agent_attempts):
        run = runs.start_agent_run(report.id, "bot")
        runs.finish_agent_run(run.id, "failed", settings=live.settings)
    payload = live.client("reader").get(f"/api/bug-reports/{report.number}").json()
    assert payload["needs_human"] is True and payload["attempts"]["failed"] == 3


def test_notes_are_listed_oldest_first(live, new_report):
    report = service.create_report(new_report(), "seed").report
    client = live.client()
    added = client.post(f"/api/bug-reports/{report.number}/events", json={"body": "first look", "data": {"k": 1}})
    assert added.status_code == 201 and added.json()["kind"] == "note" and added.json()["actor"] == "agent"
    events = client.get(f"/api/bug-reports/{report.number}/events").json()
    assert [e["kind"] for e in events] == ["created", "note"]
    assert events[-1]["data"] == {"k": 1}
