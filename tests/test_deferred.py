"""Setting indexes aside for a bulk load: what is dropped, what comes back, and who rebuilds after a kill."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bugdesk import db as dbmod
from bugdesk import deferred, queries
from bugdesk.config import Settings
from bugdesk.service import create_report
from tests.conftest import report_data, unique_word


def _objects(database) -> dict[str, str]:
    rows = database.execute_sql(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND sql IS NOT NULL"
    ).fetchall()
    return dict(rows)


def test_defer_sets_aside_secondary_indexes_and_triggers_but_never_a_unique_index(sqlite_db) -> None:
    before = _objects(sqlite_db)
    dropped = deferred.defer(sqlite_db)
    after = _objects(sqlite_db)

    assert dropped and set(dropped) == set(before) - set(after)
    assert all("UNIQUE" not in before[name] for name in dropped)
    assert {name for name, sql in before.items() if "UNIQUE" in sql} <= set(after)
    assert set(after) >= deferred.KEEP
    assert {"bug_reports_ai", "bug_reports_au", "bug_reports_ad"} <= set(dropped)
    held = {d.name: d for d in deferred.recorded(sqlite_db)}
    assert set(held) == {*dropped, "bug_reports_fts:rebuild"}

    assert deferred.restore(sqlite_db)
    assert _objects(sqlite_db) == before
    assert deferred.recorded(sqlite_db) == []


def test_a_report_written_while_indexes_are_aside_is_searchable_once_they_are_back(sqlite_db) -> None:
    deferred.defer(sqlite_db)
    word = unique_word()
    report = create_report(report_data(title=f"the {word} page is blank"), "tester", settings=Settings()).report
    search = queries.ReportFilter(q=word)
    assert [r.id for r in queries.list_reports(search).items] == []  # the FTS index has not seen it yet

    deferred.restore(sqlite_db)
    assert [r.id for r in queries.list_reports(search).items] == [report.id]
    sqlite_db.execute_sql("INSERT INTO bug_reports_fts (bug_reports_fts) VALUES ('integrity-check')")


_LOADER = """
import os, sys
from bugdesk import db as dbmod, deferred
database = dbmod.use(dbmod.open_database(sys.argv[1]))
database.connect()
print(len(deferred.defer(database)), flush=True)
os._exit(0)  # killed mid-load: nothing restores
"""


def test_indexes_a_killed_loader_left_aside_are_rebuilt_by_the_next_process_that_opens_the_database(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'bugdesk.db'}"
    with dbmod.connected(url) as database:
        before = _objects(database)
    loader = subprocess.run([sys.executable, "-c", _LOADER, url], capture_output=True, text=True, check=True)
    assert int(loader.stdout) > 0

    with dbmod.connected(url, restore_deferred=False) as database:  # a resuming import takes them over instead
        assert deferred.recorded(database) and _objects(database) != before
    with dbmod.connected(url) as database:
        assert deferred.recorded(database) == []
        assert _objects(database) == before


def test_indexes_held_by_a_live_loader_stay_aside_until_it_or_db_upgrade_restores_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bugdesk.db'}"
    with dbmod.connected(url) as database:
        before = _objects(database)
        deferred.defer(database)  # this process is the live loader
    with dbmod.connected(url) as database:
        assert all(d.owner_alive for d in deferred.recorded(database))
        assert _objects(database) != before
        dbmod.upgrade(database)
        assert _objects(database) == before and deferred.recorded(database) == []
