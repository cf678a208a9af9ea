"""A minimal remediation agent: claim the next report, read it, log what it does, resolve it with a commit SHA.

Run it against a local server:

    uv run bugdesk token create example-agent --scopes read,write     # prints the token
    uv run bugdesk serve &
    BUGDESK_TOKEN=bd_... uv run python examples/agent.py --once

A real agent would edit code where this one only reads `repo_path_hints`; the shape of the loop is
the point: a claim is a lease kept alive by heartbeats, every step is logged on the report, an
attempt is recorded as an agent run, and any exception gives the report back to the queue.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess

from bugdesk.client import Client, Lease

log = logging.getLogger("example-agent")


def current_commit() -> str:
    """The checkout's HEAD, standing in for the commit a real agent would make."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return hashlib.sha1(b"example-agent").hexdigest()


def work_on(api: Client, lease: Lease, commit: str) -> None:
    """One attempt at one report: an agent run with logs, ending in a resolution."""
    report = lease.report
    run = api.start_run(report["number"])
    try:
        hints = report["repo_path_hints"] or ["(no stack trace: start from the title)"]
        group = report["dedup"]
        lease.log(
            f"investigating {report['exception_type'] or 'the report'}: seen {group['occurrences']} time(s)",
            data={"files": hints[:5], "fingerprint": group["fingerprint"]},
        )
        # ... a real agent reads hints[0], writes a fix and commits it here ...
        lease.log(f"fix committed as {commit[:12]}", data={"commit": commit})
        lease.resolve(commits=[commit], notes=f"fixed near {hints[0]}")
        api.finish_run(run["id"], "succeeded", commits=[commit], log="resolved by the example agent")
    except Exception as exc:
        api.finish_run(run["id"], "failed", log=f"{type(exc).__name__}: {exc}")
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None, help="API base URL (default $BUGDESK_URL or http://127.0.0.1:8765)")
    parser.add_argument("--token", default=None, help="API token (default $BUGDESK_TOKEN)")
    parser.add_argument("--wait", type=float, default=10.0, help="long-poll seconds per claim attempt")
    parser.add_argument("--once", action="store_true", help="stop when the queue is empty")
    parser.add_argument("--max", type=int, default=0, help="stop after this many reports (0: no limit)")
    parser.add_argument("--commit", default=None, help="the commit SHA to resolve with (default: git HEAD)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    commit = args.commit or current_commit()
    done = 0
    with Client(args.url, args.token) as api:
        while not args.max or done < args.max:
            lease = api.claim_next(wait=args.wait)
            if lease is None:
                if args.once:
                    break
                continue
            with lease:
                log.info("claimed #%s: %s", lease.ref, lease.report["title"])
                work_on(api, lease, commit)
            done += 1
    log.info("resolved %d report(s)", done)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
