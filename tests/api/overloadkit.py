"""Helpers of the admission-control and client-retry tests: a live server with small bounds, a request that holds
an admission slot for as long as a test wants, the server's own gauges, and a proxy that loses answers."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import uvicorn
from apilive import TOKENS, LiveServer, ThreadedServer, run_server, submission, wait_until

from bugdesk.api.app import create_app
from bugdesk.config import Settings


@contextlib.contextmanager
def bounded_server(tmp_path: Path, **bounds: int) -> Iterator[LiveServer]:
    """A live server (uvicorn in a thread) on a new SQLite file with admission settings ``bounds``."""
    settings = replace(Settings(), database_url=f"sqlite:///{tmp_path / 'overload.db'}", release="", **bounds)
    with run_server(settings) as url:
        server = LiveServer(url=url, settings=settings)
        for name, scopes in TOKENS.items():
            server.add_token(name, scopes)
        try:
            yield server
        finally:
            for client in server.clients:
                client.close()


def metric(url: str, token: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` (with ``labels``, if given) in ``/api/metrics``, which is never shed."""
    text = httpx.get(f"{url}/api/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10).text
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    found = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if re.match(re.escape(name) + r"[{ ]", line) and all(w in line for w in wanted)
    ]
    assert found, f"{name} {labels} not in the metrics"
    return sum(found)


def in_flight(live: LiveServer) -> int:
    """Requests the server counts in flight, of every kind."""
    return int(metric(live.url, live.secrets["reader"], "bugdesk_http_requests_in_flight"))


def shed(live: LiveServer, kind: str | None = None) -> int:
    """Requests shed so far, of ``kind`` (read, write, ingest) or all."""
    labels = {"kind": kind} if kind else {}
    return int(metric(live.url, live.secrets["reader"], "bugdesk_http_requests_shed_total", **labels))


class HeldRequest:
    """A report submission whose body is sent only in part: the server admitted it and waits for the rest,
    so it holds one slot (of kind ingest) until `finish` sends the rest (or the socket closes)."""

    def __init__(self, live: LiveServer) -> None:
        host, port = live.url.removeprefix("http://").split(":")
        self.body = json.dumps(submission()).encode()
        head = (
            "POST /api/bug-reports HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {live.secrets['agent']}\r\nContent-Length: {len(self.body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        before = in_flight(live)
        self.sock = socket.create_connection((host, int(port)), timeout=15)
        self.sock.sendall(head.encode() + self.body[:10])
        wait_until(lambda: in_flight(live) > before, what="the held request admitted")

    def finish(self) -> int:
        """Send the rest of the body; the status of the answer."""
        self.sock.sendall(self.body[10:])
        answer = b""
        while b"\r\n" not in answer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        self.sock.close()
        return int(answer.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


class AnswerLosingProxy:
    """A TCP proxy in front of ``upstream`` that passes the first ``lose`` requests to the server, reads the
    server's full answer, and then drops the client's connection without passing the answer on: the request
    was carried out but the caller cannot know it. Later requests pass both ways."""

    def __init__(self, upstream: str, lose: int = 1) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.lose = lose
        self.forwarded = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream, timeout=15) as server:
            client_in, server_in = client.makefile("rb"), server.makefile("rb")
            while True:
                request = _read_message(client_in)
                if request is None:
                    return
                server.sendall(request)
                answer = _read_message(server_in)
                self.forwarded += 1
                if answer is None or self.forwarded <= self.lose:
                    return  # the answer is lost: the client sees its connection closed
                client.sendall(answer)

    def close(self) -> None:
        self.listener.close()


def _read_message(stream) -> bytes | None:
    """One HTTP/1.1 message with a Content-Length body (all these tests send), or None at end of stream."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = stream.readline()
        if not line:
            return None
        head += line
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return head + (stream.read(int(length.group(1))) if length else b"")


@contextlib.contextmanager
def server_later(settings: Settings, port: int, delay: float) -> Iterator[str]:
    """Serve ``settings`` on ``port`` from ``delay`` seconds on; until then connections are refused."""
    config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", access_log=False)
    server = ThreadedServer(config)
    cancelled = threading.Event()

    def serve() -> None:
        if cancelled.wait(delay):
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        with sock:
            server.run(sockets=[sock])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        cancelled.set()
        server.should_exit = True
        thread.join(timeout=20)
