"""The shared read queries: filters, keyset pagination and the status summary."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bugdesk import errors, queries, service
from bugdesk.clock import utcnow
from bugdesk.queries import ReportFilter


def test_keyset_pages_visit_every_report_once_in_order(db, make_report):
    made = [make_report() for _ in range(23)]
    for sort in ("-created_at", "number", "sla_due_at"):
        seen, cursor = [], None
        while True:
            page = queries.list_reports(ReportFilter(), sort=sort, limit=5, cursor=cursor)
            seen.extend(r.number for r in page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(r.number for r in made)
        assert len(seen) == len(set(seen))
    numbers = [r.number for r in queries.list_reports(sort="-number", limit=50).items]
    assert numbers == sorted(numbers, reverse=True)


def test_filters_combine(db, make_report):
    trace = "ab" * 16
    a = make_report(severity="critical", trace_id=trace, request_id="req_1")
    make_report(severity="critical")
    c = make_report(severity="low", component="search")
    service.claim(c.id, "agent-1")
    assert [r.id for r in queries.list_reports(ReportFilter(trace_id=trace)).items] == [a.id]
    assert [r.id for r in queries.list_reports(ReportFilter(request_id="req_1")).items] == [a.id]
    assert len(queries.list_reports(ReportFilter(severity=["critical"], status=["open"])).items) == 2
    assert [r.id for r in queries.list_reports(ReportFilter(claimed_by="agent-1")).items] == [c.id]
    assert [r.id for r in queries.list_reports(ReportFilter(status=["in_progress"])).items] == [c.id]
    assert queries.list_reports(ReportFilter(component=["search"], severity=["critical"])).items == []


def test_sla_breached_lists_open_reports_past_their_due_time(db, make_report):
    overdue = make_report(severity="critical")
    make_report(severity="low")
    later = utcnow() + timedelta(hours=5)
    page = queries.list_reports(ReportFilter(sla_breached=True), now=later)
    assert [r.id for r in page.items] == [overdue.id]


def test_the_status_summary_counts_by_status_and_severity(db, make_report):
    a = make_report(severity="critical")
    make_report(severity="low")
    resolved = make_report(severity="high")
    service.resolve(resolved.id, "agent-1")
    service.claim(a.id, "agent-2", lease_seconds=6 * 3600)
    summary = queries.status_summary(now=utcnow() + timedelta(hours=5))
    assert summary["counts"]["in_progress"]["critical"] == 1
    assert summary["counts"]["new"]["low"] == 1
    assert summary["counts"]["resolved"]["high"] == 1
    assert summary["open"] == 2 and summary["total"] == 3
    assert summary["sla_breaches"] == 1
    assert summary["oldest_open"]["number"] == a.number
    assert summary["active_claims"] == 1


def test_bad_filter_values_and_cursors_are_validation_errors(db):
    with pytest.raises(errors.ValidationError) as info:
        queries.list_reports(ReportFilter(status=["opne"]))
    assert info.value.details["field"] == "status"
    with pytest.raises(errors.ValidationError):
        queries.list_reports(cursor="garbage!!")
    with pytest.raises(errors.ValidationError):
        queries.list_reports(sort="title; DROP TABLE bug_reports")


def test_full_text_search_finds_words_in_the_stack_trace_and_ignores_query_syntax(db, make_report):
    target = make_report(
        stacktrace='Traceback (most recent call last):\n  File "/app/shop/tax.py", line 3, in '
        "compute_total\nKeyError: 'vat'"
    )
    make_report(description="nothing to see here")
    assert [r.id for r in queries.list_reports(ReportFilter(q="compute_total")).items] == [target.id]
    assert [r.id for r in queries.list_reports(ReportFilter(q="KeyError vat")).items] == [target.id]
    assert queries.list_reports(ReportFilter(q="KeyError absentword")).items == []
    for hostile in ('"unbalanced', "a OR b NEAR(", "*", "'; DROP TABLE bug_reports; --"):
        queries.list_reports(ReportFilter(q=hostile))  # never a syntax error
