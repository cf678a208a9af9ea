"""`bugdesk demo`: a fresh demo database, the agent API in the background, and the dashboard."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bugdesk.cli._app import app, console, err_console, fail
from bugdesk.config import Settings, load_settings

DEFAULT_PATH = "bugdesk-demo.db"
"""Where the demo database goes unless --db says otherwise (the working directory)."""

DEMO_APPLICATION_ID = 0x62644D4F  # "bdMO"
"""Stamped into demo databases (SQLite ``application_id``): only a file carrying it is ever replaced."""


def prepare_path(path: Path) -> bool:
    """Remove an earlier demo database at ``path``; refuse to touch any other file. True if one was replaced."""
    if not path.exists():
        return False
    try:
        with sqlite3.connect(path) as conn:
            stamp = conn.execute("PRAGMA application_id").fetchone()[0]
        conn.close()
    except sqlite3.DatabaseError:
        stamp = None
    if stamp != DEMO_APPLICATION_ID:
        fail(f"{path} exists and is not a bugdesk demo database; pass another --db path or remove it yourself")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return True


def build_database(path: Path, reports: int, seed: int) -> tuple[Settings, Any]:
    """Create and fill the demo database at ``path``; returns its settings and the build's figures."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from bugdesk import db as dbmod
    from bugdesk import demo

    settings = load_settings(database_url=str(path))
    with dbmod.connected(settings.database_url, settings) as db:
        db.execute_sql(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        if err_console.is_terminal:
            with Progress(
                "building", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True
            ) as bar:
                task = bar.add_task("steps", total=None)
                stats = demo.build(
                    settings,
                    reports=reports,
                    seed=seed,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
        else:
            stats = demo.build(settings, reports=reports, seed=seed)
    return settings, stats


class ApiServer:
    """The agent API (``bugdesk.api.app.create_app``) on 127.0.0.1 in a background thread."""

    def __init__(self, settings: Settings, port: int) -> None:
        import uvicorn

        from bugdesk.api.app import create_app

        self.port = _free_port(port)
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="bugdesk-demo-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        """Start serving; returns once the server accepts connections."""
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the agent API did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _free_port(preferred: int) -> int:
    """``preferred`` when it is free, else whatever port the OS hands out."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port on 127.0.0.1")


def start_api(settings: Settings, port: int) -> tuple[ApiServer | None, str | None]:
    """Start the API with a fresh token; (None, None) with a note when the API is not available."""
    try:
        server = ApiServer(settings, port)
    except ImportError as exc:
        err_console.print(f"note: the agent API is not available in this build ({exc}); skipping it", style="yellow")
        return None, None
    from bugdesk import db as dbmod
    from bugdesk.service import tokens

    with dbmod.connected(settings.database_url, settings):
        _, secret = tokens.create_token(f"demo-agent-{int(time.time())}", "read,write")
    server.start()
    return server, secret


@app.command()
def demo(
    db: Annotated[str, typer.Option("--db", help="Where to create the demo SQLite database.")] = DEFAULT_PATH,
    reports: Annotated[
        int, typer.Option("--reports", "-n", help="Submissions to generate (duplicates included).")
    ] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same data.")] = 7,
    no_tui: Annotated[bool, typer.Option("--no-tui", help="Only build the database, then exit.")] = False,
    headless: Annotated[bool, typer.Option("--headless", help="Build it and run the API until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option("--port", help="Port for the agent API (another is used if taken).")] = 8765,
) -> None:
    """Build a fresh demo database (weeks of realistic history), start the agent API and open the dashboard.

    An earlier demo database at the same path is replaced; any other file is left alone.
    Quitting the dashboard stops the API and prints where the database is.

    Example: bugdesk demo --no-tui --db /tmp/demo.db --reports 5000
    """
    if "://" in db and not db.startswith("sqlite"):
        fail("the demo builds a SQLite file: pass a file path to --db")
    path = Path(db.removeprefix("sqlite:///")).expanduser().resolve()
    if reports < 1:
        fail("--reports must be at least 1")
    replaced = prepare_path(path)
    if replaced:
        err_console.print(f"replacing the earlier demo database at {path}", highlight=False)
    started = time.perf_counter()
    settings, stats = build_database(path, reports, seed)
    console.print(
        f"demo database {path}: {stats.submissions:,} submissions -> {stats.canonical:,} reports "
        f"+ {stats.duplicates:,} duplicates, {stats.regressions} regressions, {stats.resolved} resolved, "
        f"{stats.closed} closed, {stats.notes} notes, {stats.claims} agent claims ({stats.live_claims} live), "
        f"{stats.merges} merges, {stats.needs_human} need a human, {stats.releases} releases "
        f"({time.perf_counter() - started:.1f}s)",
        highlight=False,
        soft_wrap=True,
    )
    if no_tui:
        return
    server, secret = start_api(settings, port)
    if server is not None:
        console.print(f"agent API: {server.url}/api  (docs: {server.url}/api/docs)", highlight=False)
        console.print(f"token (read,write; shown once): {secret}", highlight=False)
        console.print(
            f"  try: curl -H 'Authorization: Bearer {secret}' '{server.url}/api/bug-reports?status=open&limit=5'",
            highlight=False,
            soft_wrap=True,
        )
    try:
        if headless:
            if server is None:
                fail("--headless runs the agent API, which is not available in this build")
            console.print("serving until Ctrl-C", highlight=False)
            while server.thread.is_alive():
                time.sleep(0.5)
        else:
            from bugdesk.tui.app import make_app

            make_app(settings).run()
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.stop()
    console.print(f"demo database: {path}\n  open it again: bugdesk --db {path} tui", highlight=False)
