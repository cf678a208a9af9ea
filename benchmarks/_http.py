"""HTTP load helpers for the API benchmarks: a raw-socket keep-alive client, server processes, CPU accounting.

The load generator speaks HTTP/1.1 over asyncio streams with pre-serialised requests: an httpx
client caps near 1,400 requests/s on these 2 cores and takes a core from the server
(shared/BENCHMARKING.md), while this one spends a few tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bugdesk.api.schemas import ReportCreate

HERE = Path(__file__).resolve().parent


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    client_cpu: float = 0.0


def request_bytes(
    method: str, path: str, token: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    else:
        lines.append("Content-Length: 0")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _drive(port: int, requests: list[bytes], connections: int, keep_bodies: bool, until_204: bool) -> LoadResult:
    """Send ``requests`` over ``connections`` keep-alive connections (each takes the next unsent request).

    With ``until_204`` each connection repeats ``requests[0]`` until it is answered 204.
    """
    result = LoadResult(seconds=0.0)
    position = 0

    async def connection() -> None:
        nonlocal position
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                if until_204:
                    request = requests[0]
                else:
                    if position >= len(requests):
                        return
                    request = requests[position]
                    position += 1
                start = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                result.latencies.append(time.perf_counter() - start)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if keep_bodies:
                    result.bodies.append(body)
                if until_204 and status == 204:
                    return
        finally:
            writer.close()

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    result.seconds = time.perf_counter() - start
    result.client_cpu = time.process_time() - cpu
    return result


def drive(
    port: int, requests: list[bytes], connections: int, *, keep_bodies: bool = False, until_204: bool = False
) -> LoadResult:
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    return runner(_drive(port, requests, connections, keep_bodies, until_204))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _wait_healthy(port: int, proc: subprocess.Popen, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            if b" 200 " in sock.recv(200):
                return
        time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


@contextlib.contextmanager
def bugdesk_server(database_url: str, port: int, *, workers: int = 1, env: dict | None = None) -> Iterator[int]:
    """``bugdesk serve`` in a subprocess; yields its pid."""
    cmd = [sys.executable, "-m", "bugdesk", "--db", database_url, "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(
        cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_healthy(port, proc, "/api/health")
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def reference_server(port: int) -> Iterator[int]:
    """The bare FastAPI reference (same request model, no auth, no database) on uvicorn + uvloop + httptools."""
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "_http:reference_app", "--app-dir", str(HERE)]
    cmd += ["--port", str(port), "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"]
    cmd += ["--no-access-log"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(port, proc, "/health")
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def reference_app():
    """FastAPI validating the same ``ReportCreate`` body and answering 201, with nothing behind it."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/api/bug-reports", status_code=201)
    def create(body: ReportCreate) -> dict:
        return {"title": body.title, "severity": body.severity}

    @app.get("/health")
    def health() -> dict:
        return {"ok": True}

    return app


def summary(result: LoadResult, server_cpu: float, count: int) -> dict:
    from _common import percentiles

    ok = sum(n for status, n in result.statuses.items() if 200 <= status < 300)
    return {
        "requests": count,
        "ok_2xx": ok,
        "statuses": result.statuses,
        "seconds": round(result.seconds, 3),
        "per_second": round(ok / result.seconds, 1),
        "latency_ms": {k: round(v, 2) for k, v in percentiles(result.latencies).items()},
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(result.client_cpu, 2),
        "client_cpu_share": round(result.client_cpu / (result.client_cpu + server_cpu), 3) if server_cpu else None,
    }


def dumps(data: dict) -> str:
    return json.dumps(data, indent=2)
