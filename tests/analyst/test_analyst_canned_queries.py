"""Each canned query of datasette-metadata.json, run through Datasette on a history seeded through the service layer.

Expected rows come from the seeding (``analystkit.World``) or from the stored
reports filtered in Python, never from the SQL under test.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from analystkit import AGENT_A, AGENT_B, SHA_A, SHA_B, SHA_C, TRACE, Client, World

from bugdesk import db as dbmod
from bugdesk.clock import as_utc, utcnow
from bugdesk.lifecycle import DONE_STATUSES, SEVERITIES
from bugdesk.models import BugReport, BugReportEvent


@pytest.fixture(scope="module")
def reports(world: World) -> list[BugReport]:
    """Every stored report, read back through the models."""
    with dbmod.connected(str(world.path)):
        return list(BugReport.select())


def _open(reports: list[BugReport]) -> list[BugReport]:
    return [r for r in reports if r.status not in DONE_STATUSES and r.duplicate_of_id is None]


def _time(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


def test_open_reports_by_severity_and_category_count_open_canonical_reports(client: Client, reports):
    now = utcnow()
    expected = Counter((r.severity, r.category) for r in _open(reports))
    late = Counter((r.severity, r.category) for r in _open(reports) if r.sla_due_at < now)
    rows = client.rows("/bugdesk/open_by_severity_category.json")
    assert {(r["severity"], r["category"]): r["open_reports"] for r in rows} == dict(expected)
    assert {(r["severity"], r["category"]): r["past_sla"] for r in rows} == {k: late[k] for k in expected}
    assert [SEVERITIES.index(r["severity"]) for r in rows] == sorted(SEVERITIES.index(r["severity"]) for r in rows)
    assert sum(expected.values()) >= 8  # the scenario is not empty


def test_sla_breaches_list_late_open_reports_with_how_late(client: Client, reports):
    now = utcnow()
    late = sorted((r for r in _open(reports) if r.sla_due_at < now), key=lambda r: (r.sla_due_at, r.number))
    rows = client.rows("/bugdesk/sla_breaches.json")
    assert [r["number"] for r in rows] == [r.number for r in late]
    for row, report in zip(rows, late, strict=True):
        hours = (now - report.sla_due_at).total_seconds() / 3600
        assert row["hours_late"] == pytest.approx(hours, abs=0.2)
    assert len(rows) >= 3  # critical (2 days old), high (30 h), low (20 days)
    critical = client.rows("/bugdesk/sla_breaches.json?severity=critical")
    assert [r["number"] for r in critical] == [r.number for r in late if r.severity == "critical"]


def test_oldest_open_reports_come_first_with_their_age(client: Client, world: World, reports):
    expected = sorted(_open(reports), key=lambda r: (r.created_at, r.number))
    rows = client.rows("/bugdesk/oldest_open.json")
    assert [r["number"] for r in rows] == [r.number for r in expected]
    assert rows[0]["number"] == world.numbers["low_oldest"]
    assert rows[0]["age_days"] == pytest.approx(20, abs=0.1)
    low = client.rows("/bugdesk/oldest_open.json?severity=low")
    assert {r["severity"] for r in low} == {"low"}


def test_top_duplicate_clusters_sum_occurrences_per_canonical(client: Client, world: World):
    rows = client.rows("/bugdesk/top_duplicate_clusters.json")
    got = {r["canonical_number"]: (r["occurrences"], r["fingerprints"]) for r in rows}
    assert got == world.clusters
    assert [r["occurrences"] for r in rows] == sorted((r["occurrences"] for r in rows), reverse=True)
    biggest = rows[0]
    assert biggest["canonical_title"] == "Timeout talking to the ledger service"
    assert _time(biggest["first_seen_at"]) == pytest.approx(world.now - timedelta(days=8), abs=timedelta(seconds=1))
    assert _time(biggest["last_seen_at"]) == pytest.approx(world.now - timedelta(days=4), abs=timedelta(seconds=1))


def _monday(day: date) -> str:
    return (day - timedelta(days=day.weekday())).isoformat()


def test_time_to_resolve_gives_mean_and_median_hours_by_week_severity_and_category(client: Client, reports):
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in reports:
        if r.resolved_at is not None and r.duplicate_of_id is None:
            key = (_monday(r.resolved_at.date()), r.severity, r.category)
            groups.setdefault(key, []).append((r.resolved_at - r.created_at).total_seconds() / 3600)
    rows = client.rows("/bugdesk/time_to_resolve.json")
    got = {(r["week"], r["severity"], r["category"]): r for r in rows}
    assert set(got) == set(groups)
    for key, hours in groups.items():
        assert got[key]["resolved"] == len(hours)
        assert got[key]["mean_hours"] == pytest.approx(statistics.fmean(hours), abs=0.01)
        assert got[key]["median_hours"] == pytest.approx(statistics.median(hours), abs=0.01)
    assert sum(len(h) for h in groups.values()) == 3  # two agent fixes and one by a human; won't-fix has no time
    since = (utcnow() - timedelta(days=5)).date().isoformat()
    recent = client.rows(f"/bugdesk/time_to_resolve.json?since={since}")
    assert sum(r["resolved"] for r in recent) == 1  # only the human fix, 4 days ago


def test_agent_throughput_counts_claims_resolutions_and_lease_expiries_per_agent_per_day(client: Client, world):
    rows = client.rows("/bugdesk/agent_throughput.json")
    got = {(r["day"], r["agent"]): (r["claims"], r["resolutions"], r["lease_expiries"]) for r in rows}
    expected = {
        key: (c["claimed"], c["resolved"], c["lease_expired"]) for key, c in world.activity.items()
    }  # fmt: skip
    assert got == expected
    assert any(r["agent"] == AGENT_B and r["lease_expiries"] == 1 for r in rows)  # credited to the agent
    only_b = client.rows(f"/bugdesk/agent_throughput.json?agent={AGENT_B}")
    assert {r["agent"] for r in only_b} == {AGENT_B}
    assert sum(r["claims"] for r in only_b) == sum(c["claimed"] for (_, a), c in world.activity.items() if a == AGENT_B)
    last_day = client.rows("/bugdesk/agent_throughput.json?since=-1+day")
    assert {r["agent"] for r in last_day} == {AGENT_B}  # only the live claim is that recent
    assert AGENT_A in {r["agent"] for r in rows}


def test_regressions_by_release_name_the_release_it_came_back_in_and_the_fix_that_did_not_hold(client: Client):
    rows = client.rows("/bugdesk/regressions_by_release.json")
    assert len(rows) == 1
    (row,) = rows
    assert row["release_sha"] == SHA_C and row["version"] == "1.2"
    assert row["regressions"] == 1 and row["reports_reopened"] == 1
    assert row["fix_releases_that_did_not_hold"] == SHA_B
    assert _time(row["first_deployed_at"]) < _time(row["first_regressed_at"])


@pytest.mark.parametrize("release", ["1.0", SHA_A, SHA_A[:8], SHA_A.upper()])
def test_reports_by_release_accepts_a_version_a_sha_or_a_sha_prefix(client: Client, world: World, release):
    rows = client.rows(f"/bugdesk/reports_by_release.json?release={release}")
    assert {r["number"] for r in rows} == world.by_release[SHA_A]
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)


def test_reports_by_release_include_duplicates_with_their_canonical(client: Client, world: World):
    rows = client.rows(f"/bugdesk/reports_by_release.json?release={SHA_C}")
    by_number = {r["number"]: r for r in rows}
    assert set(by_number) == world.by_release[SHA_C]
    assert by_number[world.numbers["regression"]]["duplicate_of"] == world.numbers["regressed"]


def test_reports_by_release_with_no_or_a_too_short_value_return_nothing(client: Client):
    assert client.rows("/bugdesk/reports_by_release.json") == []
    assert client.rows("/bugdesk/reports_by_release.json?release=a1") == []


def test_trace_shows_every_report_with_the_trace_id_and_its_history_in_time_order(client: Client, world: World):
    rows = client.rows(f"/bugdesk/trace.json?trace_id={TRACE.upper()}")
    assert {r["report"] for r in rows} == world.trace_reports
    assert len(world.trace_reports) == 2
    assert Counter(r["kind"] for r in rows)["created"] == 2
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    assert client.rows("/bugdesk/trace.json?trace_id=" + "0" * 32) == []


def test_recent_events_default_to_the_last_day_newest_first(client: Client, world: World):
    with dbmod.connected(str(world.path)):
        cutoff = utcnow() - timedelta(days=1)
        expected = [
            e.id
            for e in BugReportEvent.select()
            .where(BugReportEvent.created_at >= cutoff)
            .order_by(BugReportEvent.created_at.desc(), BugReportEvent.id.desc())
        ]
    rows = client.rows("/bugdesk/recent_events.json")
    assert len(rows) == len(expected) and len(rows) >= 4
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)


def test_recent_events_take_an_absolute_or_relative_since_and_a_kind(client: Client, world: World):
    resolved = client.rows("/bugdesk/recent_events.json?since=-30+days&kind=resolved")
    expected = sum(c["resolved"] for c in world.activity.values())
    assert len(resolved) == expected and {r["kind"] for r in resolved} == {"resolved"}
    since = (world.now - timedelta(days=9, hours=-1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = client.rows(f"/bugdesk/recent_events.json?since={since}&kind=resolved")
    assert len(later) == expected - 1  # the fix of 10 days ago is before it
    assert {r["report"] for r in later} >= {world.numbers["resolved_after_expiry"]}


def test_every_canned_query_answers_as_json_with_shape_array(client: Client):
    """Parameters left empty fall back to their documented defaults; nothing errors."""
    metadata = client.get("/-/metadata.json").json()
    queries = metadata["databases"]["bugdesk"]["queries"]
    assert len(queries) == 10
    for name in queries:
        response = client.get(f"/bugdesk/{name}.json?_shape=array")
        assert response.status_code == 200, (name, response.text)
        assert isinstance(json.loads(response.text), list)
