"""Helpers of the API tests: a live uvicorn server in a thread or a subprocess, and report bodies."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from bugdesk.api.app import create_app
from bugdesk.config import Settings
from bugdesk.service import tokens

# Who the fixture creates, with their scopes.
TOKENS = {"agent": "read,write", "reader": "read", "ingest": "ingest", "admin": "admin"}


@dataclass
class LiveServer:
    url: str
    settings: Settings
    secrets: dict[str, str] = field(default_factory=dict)
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, who: str | None = "agent", **kwargs) -> httpx.Client:
        """An httpx client for the API, authenticated as ``who`` (None: no token)."""
        headers = {"Authorization": f"Bearer {self.secrets[who]}"} if who else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)
        self.clients.append(client)
        return client

    def submit(self, data: dict, who: str = "agent", **kwargs) -> dict:
        """POST a report as ``who``, then read back (as admin) the full canonical report it became."""
        answer = self.client(who).post("/api/bug-reports", json=data, **kwargs)
        assert answer.status_code in (200, 201), answer.text
        number = answer.json()["canonical"]["number"]
        return self.client("admin").get(f"/api/bug-reports/{number}").json()

    def add_token(self, name: str, scopes: str) -> str:
        _, secret = tokens.create_token(name, scopes)
        self.secrets[name] = secret
        return secret


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def wait_until(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true (no fixed sleeps standing in for synchronisation)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(0.005)


class ThreadedServer(uvicorn.Server):
    """uvicorn as a test server: it notices ``should_exit`` within 10 ms (not 100) and shuts down without
    uvicorn's fixed 100 ms grace sleep, polling instead until its connections are gone."""

    async def main_loop(self) -> None:
        counter = 0
        while not self.should_exit:
            await asyncio.sleep(0.01)
            counter += 1
            if counter % 10 == 0 and await self.on_tick(counter // 10):
                break

    async def shutdown(self, sockets=None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + 10
        while (self.server_state.connections or self.server_state.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


@contextlib.contextmanager
def run_server(settings: Settings) -> Iterator[str]:
    """Serve ``create_app(settings)`` in a thread; yields the base URL."""
    sock = _free_socket()
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", access_log=False)
    server = ThreadedServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), what="server start")
    if not server.started:
        raise RuntimeError("the API server failed to start (see the log above)")
    host, port = sock.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextlib.contextmanager
def server_process(database_url: str, port: int, cwd: Path) -> Iterator[str]:
    """``bugdesk serve`` as a subprocess (a real second worker process) on ``port``."""
    env = {**os.environ, "BUGDESK_DATABASE_URL": database_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bugdesk", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            return True
        try:
            return httpx.get(f"{url}/api/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, timeout=30, what=f"server process on port {port}")
        if proc.poll() is not None:
            raise RuntimeError(f"bugdesk serve exited: {proc.stderr.read().decode()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def free_port() -> int:
    with _free_socket() as sock:
        return sock.getsockname()[1]


def _word() -> str:
    """Letters the fingerprint keeps (no digits or hex-only runs), so each submission is its own group."""
    return "".join(random.choice("ghijklmnopqrstuvwxyz") for _ in range(14))


def submission(**overrides) -> dict:
    """A valid report body with a distinct stack trace."""
    word = _word()
    data = {
        "title": f"KeyError in {word}()",
        "severity": "high",
        "component": "payments",
        "stacktrace": (
            "Traceback (most recent call last):\n"
            f'  File "/srv/app/payments/{word}.py", line 88, in {word}\n'
            "    total = prices[key]\n"
            f"KeyError: '{word}'"
        ),
    }
    data.update(overrides)
    return data
