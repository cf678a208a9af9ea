"""Three API hosts and one PostgreSQL server as network namespaces on this machine (issue 11, scale-out).

    with scaleout() as topo:          # root only; everything is removed again on exit, also on errors
        topo.hosts[0].url              # http://10.77.0.11:8765, reachable from the root namespace
        topo.database_url              # postgresql://postgres@10.77.0.10:5432/bugdesk

Layout: a Linux bridge in the root namespace holds 10.77.0.1/24 and one veth pair per namespace:
``bdsx-<run>-pg`` (10.77.0.10, a PostgreSQL 15 cluster of its own, initdb'd into a temporary
directory as the ``postgres`` OS user) and ``bdsx-<run>-api1..3`` (10.77.0.11-13, one
``bugdesk serve`` each). The API hosts reach PostgreSQL over the bridge like separate machines
on a LAN; the caller (a test or a benchmark in the root namespace) reaches every host through
the bridge address. Nothing is routed beyond the bridge (no forwarding, no NAT).

Every run has its own names (``bdsx-<6 hex>``) so a crashed run's leftovers never collide, and
the subnet is fixed, so runs are serialised by a lock file; the run holding the lock first
removes whatever an earlier, dead run left behind (namespaces, processes in them, links and
work directories with the ``bdsx`` prefix). Imported by ``tests/reliability/test_scaleout_postgres.py``
and ``benchmarks/scaleout.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PREFIX = "bdsx"
SUBNET = "10.77.0"
BRIDGE_ADDRESS = f"{SUBNET}.1"
PG_ADDRESS = f"{SUBNET}.10"
API_PORT = 8765
PG_PORT = 5432
PG_BIN = Path("/usr/lib/postgresql/15/bin")
LOCK_FILE = Path(tempfile.gettempdir()) / f"{PREFIX}-scaleout.lock"
# Every external command gets a deadline, so a wedged `ip` or `initdb` fails the run instead of hanging it.
COMMAND_TIMEOUT_S = 60


def unavailable_reason() -> str | None:
    """Why the topology cannot be built here (None when it can): root, iproute2 with netns, PostgreSQL 15."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) is not installed"
    for tool in ("initdb", "postgres", "pg_isready"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL 15 binaries missing ({PG_BIN / tool})"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` OS user to run initdb and the server as"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


def _run(*cmd: str, check: bool = True, timeout: float = COMMAND_TIMEOUT_S, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return result


def _namespaces() -> list[str]:
    # `ip netns list` prints "name (id: 3)" for namespaces that have an id.
    out = _run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _namespace_pids(ns: str) -> list[int]:
    out = _run("ip", "netns", "pids", ns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_namespace(ns: str) -> None:
    """SIGKILL whatever still runs in ``ns`` and delete it (deleting alone would leave its processes running)."""
    for _ in range(5):  # bounded: a process may fork while we kill
        pids = _namespace_pids(ns)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    _run("ip", "netns", "del", ns, check=False)


def _links() -> list[str]:
    out = _run("ip", "-o", "link", "show", check=False).stdout
    # "12: bdsx1a2b3c1@if2: <...>": the name is the second field, without the peer suffix.
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def cleanup_leftovers() -> list[str]:
    """Remove namespaces, links and work directories of earlier runs (call with the lock held); returns what went."""
    removed = []
    for ns in _namespaces():
        if ns.startswith(f"{PREFIX}-"):
            _kill_namespace(ns)
            removed.append(f"netns {ns}")
    for link in _links():
        if link.startswith(PREFIX):
            _run("ip", "link", "del", link, check=False)
            removed.append(f"link {link}")
    for path in Path(tempfile.gettempdir()).glob(f"{PREFIX}-run-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed.append(f"dir {path}")
    return removed


@contextlib.contextmanager
def _exclusive(timeout: float = 300) -> Iterator[None]:
    """One topology at a time (they share the subnet); the kernel releases a dead holder's lock."""
    with open(LOCK_FILE, "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another scale-out run holds {LOCK_FILE} for more than {timeout} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cpu_seconds_in(ns: str) -> float:
    """User + system CPU of every process now in ``ns``, including their waited-for children (Linux /proc).

    PostgreSQL's backends are children of the postmaster: a backend that exits during a measurement
    moves its CPU into the postmaster's ``cutime``/``cstime``, so it is still counted.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _namespace_pids(ns):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])
    return total / ticks


def context_switches_in(ns: str) -> dict[int, int]:
    """Voluntary + involuntary context switches so far of every thread (by thread id) of every process in ``ns``.

    Per thread, because a process's own counters cover its main thread only; compare two samples
    with `switches_between`.
    """
    counts: dict[int, int] = {}
    for pid in _namespace_pids(ns):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    lines = (task / "status").read_text().splitlines()
                    counts[int(task.name)] = sum(int(line.split()[-1]) for line in lines if "ctxt_switches:" in line)
    return counts


def switches_between(before: dict[int, int], after: dict[int, int]) -> int:
    """Context switches between two samples: threads started since count in full; threads that ended are missed
    (an idle threadpool thread retiring during a run, which switched little)."""
    return sum(count - before.get(tid, 0) for tid, count in after.items())


@dataclass
class ApiHost:
    index: int  # 1-based, as in the namespace name
    ns: str
    address: str
    port: int = API_PORT
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log and self.log.exists() else ""


@dataclass
class Topology:
    run_id: str
    workdir: Path
    bridge: str
    pg_ns: str
    hosts: list[ApiHost]
    database_url: str = ""
    token: str = ""  # the secret of the `scaleout-agent` token (read,write) created with the CLI
    pg_proc: subprocess.Popen | None = None
    namespaces: list[str] = field(default_factory=list)

    # -- commands inside a namespace --------------------------------------------------------------

    def bugdesk(self, host: ApiHost, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        """``bugdesk --db <pg> ARGS`` run inside ``host``'s namespace, as an operator on that host would."""
        return _run(
            "ip", "netns", "exec", host.ns, sys.executable, "-m", "bugdesk", "--db", self.database_url, *args,
            cwd=self.workdir, env=self._env(), timeout=timeout,
        )  # fmt: skip

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # Drop the caller's BUGDESK_* settings so every host runs with exactly what the run chose.
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUGDESK_")}
        env.update(extra or {})
        return env

    # -- API servers ------------------------------------------------------------------------------

    def start_server(self, host: ApiHost, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        """``bugdesk serve --host <its address>`` in ``host``'s namespace; returns once /api/health answers 200."""
        if host.proc is not None and host.proc.poll() is None:
            raise RuntimeError(f"api{host.index} is already running")
        host.log = self.workdir / f"api{host.index}.log"
        cmd = ["ip", "netns", "exec", host.ns, sys.executable, "-m", "bugdesk", "--db", self.database_url, "serve"]
        cmd += ["--host", host.address, "--port", str(host.port), "--workers", str(workers), "--log-level", "warning"]
        with open(host.log, "ab") as log:
            host.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=self._env(env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_healthy(self, host: ApiHost, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.proc is None or host.proc.poll() is not None:
                raise RuntimeError(f"bugdesk serve on api{host.index} exited: {host.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{host.url}/api/health", timeout=2, trust_env=False).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"api{host.index} not healthy within {timeout} s: {host.log_tail()}")

    def stop_server(self, host: ApiHost, timeout: float = 15) -> None:
        """SIGTERM (uvicorn's graceful shutdown) to the server's process group, SIGKILL after ``timeout``."""
        proc, host.proc = host.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the group: `--workers N` has worker children
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)

    def kill_server(self, host: ApiHost) -> None:
        """SIGKILL, as a crashed host: no shutdown, no lease release, its connections simply vanish."""
        proc = host.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=COMMAND_TIMEOUT_S)

    def server_pids(self, host: ApiHost) -> list[int]:
        return _namespace_pids(host.ns)

    # -- building and tearing down ----------------------------------------------------------------

    def build_network(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        addresses = [(self.pg_ns, PG_ADDRESS, "p")] + [(h.ns, h.address, str(h.index)) for h in self.hosts]
        for ns, address, tag in addresses:
            _run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            veth = f"{self.bridge[:-2]}{tag}"  # bdsx<run>p, bdsx<run>1, ...: within the 15-character limit
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "link", "set", veth, "master", self.bridge)
            _run("ip", "link", "set", veth, "up")
            _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")

    def start_postgres(self, settings: dict[str, str] | None = None) -> None:
        pgdata = self.workdir / "pgdata"
        pgdata.mkdir()
        shutil.chown(pgdata, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        # --no-sync: a throw-away cluster; the server itself runs with the default fsync=on unless told otherwise.
        _run(*as_postgres, str(PG_BIN / "initdb"), "-D", str(pgdata), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync")  # fmt: skip
        with open(pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")
        options = {
            "listen_addresses": PG_ADDRESS,
            "port": str(PG_PORT),
            "unix_socket_directories": str(pgdata),
            "shared_buffers": "64MB",
            "max_connections": "200",
        }
        options.update(settings or {})
        cmd = ["ip", "netns", "exec", self.pg_ns, *as_postgres, str(PG_BIN / "postgres"), "-D", str(pgdata)]
        for name, value in options.items():
            cmd += ["-c", f"{name}={value}"]
        with open(self.workdir / "postgres.log", "ab") as log:
            self.pg_proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            ready = _run(str(PG_BIN / "pg_isready"), "-h", PG_ADDRESS, "-p", str(PG_PORT), "-t", "1", check=False)
            if ready.returncode == 0:
                break
            if self.pg_proc.poll() is not None or time.monotonic() > deadline:
                log_text = (self.workdir / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL in {self.pg_ns} did not start: {log_text}")
            time.sleep(0.1)
        import psycopg

        admin = f"postgresql://postgres@{PG_ADDRESS}:{PG_PORT}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE DATABASE bugdesk")
        self.database_url = f"postgresql://postgres@{PG_ADDRESS}:{PG_PORT}/bugdesk"

    def stop_postgres(self) -> None:
        proc, self.pg_proc = self.pg_proc, None
        if proc is None or proc.poll() is not None:
            return
        # runuser forks: the postmaster is its child, named in postmaster.pid. SIGINT is the fast shutdown.
        pidfile = self.workdir / "pgdata" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text().split()[0]), signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=COMMAND_TIMEOUT_S)

    def teardown(self) -> list[str]:
        """Stop servers and PostgreSQL, delete namespaces, the bridge and the work directory; returns problems."""
        problems: list[str] = []
        steps = [(f"stop api{h.index}", lambda h=h: self.stop_server(h)) for h in self.hosts]
        steps.append(("stop postgres", self.stop_postgres))
        steps += [(f"delete {ns}", lambda ns=ns: _kill_namespace(ns)) for ns in self.namespaces]
        steps.append(("delete bridge", lambda: _run("ip", "link", "del", self.bridge, check=False)))
        steps.append(("remove workdir", lambda: shutil.rmtree(self.workdir, ignore_errors=True)))
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep tearing down; report at the end
                problems.append(f"{what}: {exc!r}")
        left = [ns for ns in _namespaces() if ns.startswith(f"{PREFIX}-{self.run_id}")]
        if left:
            problems.append(f"namespaces left: {left}")
        return problems


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (``timeout``, a CI runner giving up) raises instead of killing outright, so teardown still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_exit(signum, frame):
        raise SystemExit(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def scaleout(
    hosts: int = 3,
    *,
    server_env: dict[str, str] | None = None,
    pg_settings: dict[str, str] | None = None,
    start_servers: bool = True,
    lock_timeout: float = 300,
) -> Iterator[Topology]:
    """Build the topology, migrate the database once from api1, create a token, start the servers; tear down after."""
    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    with _exclusive(lock_timeout), _sigterm_unwinds():
        cleanup_leftovers()
        run_id = uuid.uuid4().hex[:6]
        workdir = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-run-{run_id}-"))
        workdir.chmod(0o755)  # the postgres OS user must reach pgdata inside it
        topo = Topology(
            run_id=run_id,
            workdir=workdir,
            bridge=f"{PREFIX}{run_id}br",
            pg_ns=f"{PREFIX}-{run_id}-pg",
            hosts=[ApiHost(i, f"{PREFIX}-{run_id}-api{i}", f"{SUBNET}.{10 + i}") for i in range(1, hosts + 1)],
        )
        try:
            topo.build_network()
            topo.start_postgres(pg_settings)
            # Migrations run once, from one host, before any server starts (docs/deploy.md).
            topo.bugdesk(topo.hosts[0], "db", "upgrade")
            # A token must exist before `serve` binds a non-loopback address; its secret is the last line printed.
            created = topo.bugdesk(topo.hosts[0], "token", "create", "scaleout-agent", "--scopes", "read,write")
            topo.token = created.stdout.strip().splitlines()[-1].strip()
            if start_servers:
                for host in topo.hosts:
                    topo.start_server(host, env=server_env)
                for host in topo.hosts:
                    topo.wait_healthy(host)
            yield topo
        finally:
            problems = topo.teardown()
            if problems:
                print(f"scale-out teardown problems: {problems}", file=sys.stderr)
