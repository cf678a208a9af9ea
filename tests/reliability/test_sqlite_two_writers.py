"""SQLite shared by two processes writing at full speed never answers `database is locked` to a user.

The API server (a `bugdesk serve` subprocess) takes HTTP submissions from four
client threads while a second process writes through the service layer as the
CLI or the dashboard would, both for 20 seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))

from apilive import free_port, server_process, submission

from bugdesk import db as dbmod
from bugdesk.models import BugReport
from bugdesk.service import tokens

SECONDS = 20

_DIRECT_WRITER = textwrap.dedent(
    """
    import json, random, sys, time
    from bugdesk import db as dbmod, service
    from bugdesk.errors import BugdeskError
    url, seconds = sys.argv[1], float(sys.argv[2])
    made, failures = 0, []
    with dbmod.connected(url):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            word = "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(12))
            try:
                report = service.create_report({"title": f"cli report about {word}"}, "cli-user").report
                service.add_note(report.id, "cli-user", "looked at it")
                made += 1
            except Exception as exc:  # any error here is what the test is about
                failures.append(repr(exc))
    print(json.dumps({"made": made, "failures": failures[:5], "failed": len(failures)}))
    """
)


def test_api_and_a_second_process_write_for_twenty_seconds_without_lock_errors(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with dbmod.connected(url):
        _, secret = tokens.create_token("loader", "read,write")
    answers: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    with server_process(url, free_port(), tmp_path) as base:
        direct = subprocess.Popen(
            [sys.executable, "-c", _DIRECT_WRITER, url, str(SECONDS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

        def client() -> None:
            end = time.monotonic() + SECONDS
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
                while time.monotonic() < end:
                    try:
                        status = http.post("/api/bug-reports", json=submission()).status_code
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(repr(exc))
                        continue
                    with lock:
                        answers.append(status)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 60)
        out, err = direct.communicate(timeout=SECONDS + 60)
    assert direct.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert errors == []
    assert answers and set(answers) <= {200, 201}, {s: answers.count(s) for s in set(answers)}
    assert result["failed"] == 0, result["failures"]
    assert result["made"] > 0
    with dbmod.connected(url):
        assert BugReport.select().count() == len(answers) + result["made"]
