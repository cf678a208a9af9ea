"""Group commit of a worker's SQLite writes: one transaction per batch, each write in a savepoint of its own."""

from __future__ import annotations

import pytest

from bugdesk import service
from bugdesk.api.deps import _run_batch
from bugdesk.errors import ValidationError
from bugdesk.models import BugReport, BugReportEvent


def _file(title: str):
    return lambda: service.create_report({"title": title, "severity": "low"}, "agent")


def _file_then_fail(title: str):
    def job():
        service.create_report({"title": title, "severity": "low"}, "agent")
        raise ValidationError("refused after writing", field="title")

    return job


def test_a_write_that_fails_takes_back_only_its_own_changes(sqlite_db):
    outcomes = _run_batch([(_file("quokka one"), ()), (_file_then_fail("wombat"), ()), (_file("quokka two"), ())])
    assert [ok for ok, _ in outcomes] == [True, False, True]
    assert isinstance(outcomes[1][1], ValidationError)
    titles = sorted(r.title for r in BugReport.select())
    assert titles == ["quokka one", "quokka two"]
    assert BugReportEvent.select().where(BugReportEvent.kind == "created").count() == 2


def test_the_batch_answers_each_write_with_its_own_result(sqlite_db):
    outcomes = _run_batch([(_file(f"platypus {n}"), ()) for n in "abc"])
    assert [created.report.title for _, created in outcomes] == ["platypus a", "platypus b", "platypus c"]
    assert len({created.report.number for _, created in outcomes}) == 3


@pytest.mark.parametrize("size", [1, 64])
def test_every_write_of_a_batch_is_committed_together(sqlite_db, size):
    _run_batch([(_file(f"numbat {n}"), ()) for n in range(size)])
    sqlite_db.close()  # a fresh connection sees only what was committed
    sqlite_db.connect()
    assert BugReport.select().count() == size


def test_agents_writes_go_into_the_batch_before_waiting_submissions(sqlite_db):
    import asyncio

    from bugdesk.api.deps import _WriteBatches

    order: list[str] = []

    async def scenario() -> None:
        queue = _WriteBatches()
        writes = [(f"submission {n}", True) for n in range(3)] + [("claim", False)]
        tasks = [
            asyncio.create_task(queue.submit(order.append, (label,), submission=submission))
            for label, submission in writes
        ]
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert order == ["claim", "submission 0", "submission 1", "submission 2"]
