"""Several uvicorn worker processes on one port, each with a listening socket of its own (``SO_REUSEPORT``).

uvicorn's own ``--workers`` shares one listening socket between the workers, and whichever
worker wakes first accepts a burst of connections: with 16 keep-alive clients one worker
carried 85 % of the load and two workers ingested no faster than one. With a socket per
worker the kernel spreads new connections across them by a hash of the connection's
addresses. The supervisor here starts the workers, restarts one that dies, and stops them
all on SIGINT or SIGTERM.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
from typing import Any

log = logging.getLogger("bugdesk.api")

PR_SET_PDEATHSIG = 1

# uvicorn's exit code when the application's startup fails.
STARTUP_FAILURE = 3

# Linux gives a listening socket this many pending connections at most unless raised; uvicorn's default too.
BACKLOG = 2048


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def _end_with(supervisor: int) -> None:
    """Ask Linux for a SIGTERM when the supervisor dies, even by SIGKILL, so no worker is left serving alone."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a dead supervisor's workers stay until stopped
        return
    if os.getppid() != supervisor:  # it died while this process was starting, before the request
        raise SystemExit(0)


def check_port_free(host: str, port: int) -> None:
    """Raise OSError if something already listens on ``host:port`` (``SO_REUSEPORT`` alone would share it)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _worker(host: str, port: int, config: dict[str, Any], supervisor: int) -> None:  # pragma: no cover - a child
    _end_with(supervisor)
    import uvicorn

    sock = _listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(host=host, port=port, **config)).run(sockets=[sock])


def run_workers(count: int, host: str, port: int, config: dict[str, Any], *, poll: float = 0.5) -> None:
    """Serve with ``count`` worker processes until SIGINT or SIGTERM; ``config`` is passed to ``uvicorn.Config``."""
    check_port_free(host, port)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=_worker, args=(host, port, config, os.getpid()), daemon=False)
        process.start()
        return process

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers = [start() for _ in range(count)]
    failed = False
    try:
        while not stop.wait(poll):
            for i, process in enumerate(workers):
                if process.exitcode == STARTUP_FAILURE:
                    # The app could not start (a pending migration, say); restarting would only repeat it.
                    stop.set()
                    failed = True
                elif not process.is_alive():
                    log.warning("worker %s exited with %s; starting another", process.pid, process.exitcode)
                    workers[i] = start()
    finally:
        for process in workers:
            if process.is_alive():
                process.terminate()  # uvicorn finishes the requests in flight on SIGTERM
        for process in workers:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failed:
        raise SystemExit(STARTUP_FAILURE)
