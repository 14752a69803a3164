"""Real processes for the cluster and fault-injection tests: the `gatesearch` CLI as a
subprocess, `ray start` head/worker nodes and an `mlflow server`, all on 127.0.0.1, each
started in its own session and stopped by pid/process group."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}  # the session's Ray token too
    e["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="gsr", dir="/tmp")  # never share the test session's instance
    # Ray workers (also those of `ray start` nodes) import user objectives from tests/
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), e.get("PYTHONPATH", "")) if p)
    e.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # set by the in-process local instance; nodes need clusters on
    e.update({k: v for k, v in extra.items() if v is not None})
    for k in [k for k, v in extra.items() if v is None]:  # None: not in the environment at all
        e.pop(k, None)
    return e


#: one Ray start at a time across the pytest-xdist workers (``make test`` runs two: two clusters may
#: run at once, but never start at once): the product's own GATESEARCH_RAY_START_LOCK, taken around
#: ``ray.init`` by every driver the tests start, and by the tests' own starts (``ray_start_slot``)
START_LOCK = Path(tempfile.gettempdir()) / f"gatesearch-tests-ray-start-{os.getuid()}.lock"
if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("GATESEARCH_TEST_START_TURNS", "1") == "1":
    os.environ.setdefault("GATESEARCH_RAY_START_LOCK", str(START_LOCK))


@contextmanager
def ray_start_slot():
    """Hold the Ray start lock for a block (``ray start``, a script that starts a cluster)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    fd = os.open(START_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def run_starting_ray(args: list[str], *, env: dict[str, str], timeout: float, cwd=None) -> subprocess.CompletedProcess:
    """``subprocess.run(args, capture_output=True, text=True)`` for a script that starts Ray clusters
    of its own (``ray.cluster_utils``): it runs while no other worker's cluster starts."""
    with ray_start_slot():
        return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def spawn(args: list[str], log: Path, **extra: str) -> subprocess.Popen:
    """Start ``args`` in a new session (so its whole process group can be killed)."""
    fh = open(log, "wb")
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env(**extra), start_new_session=True,
                            cwd=str(log.parent))


def gatesearch(*args: str, log: Path, **extra: str) -> subprocess.Popen:
    return spawn([str(BIN / "gatesearch"), *args], log, **extra)


def gatesearch_ok(*args: str, log: Path, timeout: float = 400, marker: str | None = None,
                  env: dict | None = None) -> str:
    """Run ``gatesearch <args>`` in ``log``'s folder to the end (``env``: more environment);
    assert it exits 0 (the log's tail otherwise); return its output. Every process it started
    (marked with ``marker`` in their environment, a fresh one if None) is killed afterwards, Ray's
    included."""
    import uuid

    marker = marker or f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    proc = gatesearch(*args, log=log, **{**(env or {}), key: value})
    try:
        assert proc.wait(timeout=timeout) == 0, tail(log)
    finally:
        kill_env(marker)
    return log.read_text()


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None,
             every: float = 0.5):
    """Poll ``predicate`` until it returns a truthy value; fail with the log tail otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}:\n{tail(log)}")
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{tail(log)}")


def tail(log: Path | None, n: int = 4000) -> str:
    if log is None or not log.exists():
        return ""
    return log.read_text(errors="replace")[-n:]


def sqlite_count(db: Path, sql: str) -> int:
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return int(con.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return 0


def finished_children(db: Path) -> int:
    return sqlite_count(db, "select count(*) from runs r join tags t on r.run_uuid = t.run_uuid "
                            "where t.key = 'gatesearch.role' and t.value = 'trial' and r.status = 'FINISHED'")


@dataclass
class MlflowServer:
    """A real ``mlflow server`` on 127.0.0.1 with local artifacts; its backend store is a SQLite
    file in ``root`` unless ``backend_store_uri`` names another (e.g. :meth:`PostgresServer.url`)."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    backend_store_uri: str | None = None
    workers: int = 1

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> "MlflowServer":
        import urllib.request

        self.root.mkdir(parents=True, exist_ok=True)
        store = self.backend_store_uri or f"sqlite:///{self.root / 'server.db'}"
        self.proc = spawn([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                           "--backend-store-uri", store,
                           "--artifacts-destination", str(self.root / "artifacts"), "--workers", str(self.workers)],
                          self.root / f"mlflow-{self.port}.log")

        def up():
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(up, timeout, "mlflow server /health", self.proc, self.root / f"mlflow-{self.port}.log")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc, signal.SIGTERM)
            kill_group(self.proc)
            self.proc = None


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (``initdb``, ``postgres``): Debian keeps them out
    of PATH under ``/usr/lib/postgresql/<version>/bin``; ``$GATESEARCH_PG_BIN`` overrides."""
    import shutil

    candidates = [os.environ.get("GATESEARCH_PG_BIN", "")]
    candidates += [str(d) for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                                          key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
                                          reverse=True)]
    found = shutil.which("initdb")
    candidates.append(str(Path(found).parent) if found else "")
    for c in candidates:
        if c and all((Path(c) / prog).is_file() for prog in ("initdb", "postgres")):
            return Path(c)
    return None


def postgres_missing() -> str | None:
    """Why the PostgreSQL tests cannot run here (None when they can)."""
    if postgres_bin() is None:
        return ("PostgreSQL's server programs (initdb, postgres) are not installed: `make test` installs "
                "Debian's `postgresql` package where it can (root, apt-get); or set GATESEARCH_PG_BIN")
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:
        return "psycopg is not installed: pip install 'gatesearch[postgres]'"
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a `postgres` user to run the server as (PostgreSQL refuses root)"
    return None


@dataclass
class PostgresServer:
    """A real PostgreSQL server on 127.0.0.1 with its own data folder (``initdb`` on first start).

    PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user, in a
    folder under /tmp that user owns (pytest's tmp_path is private to root). Clients log in as
    ``gatesearch`` with a password over TCP (scram); :meth:`stop` is a fast shutdown (open
    transactions rolled back, clients disconnected), :meth:`restart` keeps data and port."""

    user: str = "gatesearch"
    password: str = "gs/pw-7b3e/x"  # a '/' in it: SQLAlchemy takes it raw, a libpq URI does not
    port: int = field(default_factory=free_port)
    root: Path | None = None
    proc: subprocess.Popen | None = None

    def url(self, db: str, driver: str = "postgresql+psycopg", password: bool = True) -> str:
        """The SQLAlchemy URL of database ``db``, with the password (as a user would write it) or
        without (libpq then reads PGPASSWORD)."""
        return f"{driver}://{self.user}{':' + self.password if password else ''}@127.0.0.1:{self.port}/{db}"

    def connect(self, db: str, **kwargs):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password, dbname=db,
                               **kwargs)

    def _as_owner(self) -> dict:
        if os.geteuid() != 0:
            return {}
        import pwd

        pw = pwd.getpwnam("postgres")
        return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 60) -> "PostgresServer":
        binaries = postgres_bin()
        assert binaries is not None, postgres_missing()
        owner = self._as_owner()
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="gspg", dir="/tmp"))  # short: the socket path is <= 107 bytes
            if owner:
                os.chown(self.root, owner["user"], owner["group"])
        data = self.root / "data"
        if not data.exists():
            pwfile = self.root / "pw"
            pwfile.write_text(self.password + "\n")
            if owner:
                os.chown(pwfile, owner["user"], owner["group"])
            out = subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", self.user, "--pwfile", str(pwfile),
                                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"],
                                 capture_output=True, text=True, timeout=120, cwd=str(self.root), **owner)
            assert out.returncode == 0, f"initdb failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        log = self.root / "postgres.log"
        fh = open(log, "ab")
        self.proc = subprocess.Popen([str(binaries / "postgres"), "-D", str(data), "-p", str(self.port),
                                      "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
                                      "-c", "max_connections=200"],
                                     stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=str(self.root), **owner)
        wait_for(self._ready, timeout, f"PostgreSQL on 127.0.0.1:{self.port}", self.proc, log)
        return self

    def _ready(self) -> bool:
        import psycopg

        try:
            with self.connect("postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its SQLAlchemy URL."""
        with self.connect("postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, db: str, sql: str, *args) -> list[tuple]:
        with self.connect(db) as con:
            return con.execute(sql, args or None).fetchall()

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), then SIGKILL if it lingers."""
        if self.proc is not None:
            try:
                self.proc.send_signal(signal.SIGINT)
                self.proc.wait(timeout=30)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                kill_group(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        """Stop and delete the data folder."""
        import shutil

        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RayNodes:
    """A Ray cluster from ``ray start``: a head and worker nodes on 127.0.0.1, each with its own
    temp dir; ``stop`` runs ``ray stop`` against exactly these nodes (by temp dir)."""

    root: Path
    port: int = field(default_factory=free_port)
    nodes: list[dict] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, args: list[str], name: str, resources: dict) -> None:
        tmp = Path(tempfile.mkdtemp(prefix=f"gs{name}", dir="/tmp"))
        cmd = [str(BIN / "ray"), "start", "--node-ip-address", "127.0.0.1", "--temp-dir", str(tmp),
               f"--num-cpus={resources.get('cpu', 1)}", f"--num-gpus={resources.get('gpu', 0)}",
               "--disable-usage-stats", *args]
        with ray_start_slot():  # `ray start` returns once its node is up
            out = subprocess.run(cmd, env=env(RAY_TMPDIR=str(tmp)), capture_output=True, text=True, timeout=180,
                                 start_new_session=True)
        if out.returncode != 0:
            raise AssertionError(f"ray start failed: {' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        self.nodes.append({"name": name, "tmp": tmp})

    def start_head(self, cpus: int = 1) -> "RayNodes":
        self._start(["--head", f"--port={self.port}", "--include-dashboard=false"], "head", {"cpu": cpus})
        return self

    def add_worker(self, cpus: int = 1) -> None:
        self._start([f"--address={self.address}"], f"w{len(self.nodes)}", {"cpu": cpus})

    def pids(self, name: str) -> list[int]:
        """Processes of node ``name``: every process whose environment carries the node's
        RAY_TMPDIR (Ray renames its processes, so command lines cannot be trusted)."""
        tmp = next(n["tmp"] for n in self.nodes if n["name"] == name)
        return pids_with_env(f"RAY_TMPDIR={tmp}")

    def kill_node(self, name: str) -> int:
        """SIGKILL every process of one node (its raylet, object store, workers)."""
        tmp = next(n["tmp"] for n in self.nodes if n["name"] == name)
        return kill_env(f"RAY_TMPDIR={tmp}")

    def stop(self) -> None:
        for node in self.nodes:
            self.kill_node(node["name"])
        self.nodes.clear()


def pids_with_env(entry: str) -> list[int]:
    """Pids of this user's processes whose environment contains ``entry`` (``KEY=value``)."""
    needle = entry.encode() + b"\0"
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if needle in (d / "environ").read_bytes():
                found.append(int(d.name))
        except OSError:
            continue
    return found


def kill_env(entry: str) -> int:
    """SIGKILL every process carrying ``entry`` in its environment (e.g. leftovers of a killed driver)."""
    pids = pids_with_env(entry)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def _hex_ip(h: str) -> str:
    import ipaddress

    raw = bytes.fromhex(h)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))  # /proc stores 32-bit words little-endian
    v6 = ipaddress.IPv6Address(words)
    return str(v6.ipv4_mapped or v6)


def listening_addresses(pids: list[int]) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every TCP socket in LISTEN state held by ``pids`` (read from /proc)."""
    listen = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A":  # TCP_LISTEN
                ip, port = parts[1].split(":")
                listen[parts[9]] = (_hex_ip(ip), int(port, 16))
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in listen:
                found.append((pid, *listen[target[8:-1]]))
    return found


def tcp_connections() -> list[tuple[str, int, str, int]]:
    """(local ip, port, peer ip, port) of every established TCP connection in this network namespace."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "01":  # TCP_ESTABLISHED
                (lip, lport), (rip, rport) = (p.split(":") for p in parts[1:3])
                found.append((_hex_ip(lip), int(lport, 16), _hex_ip(rip), int(rport, 16)))
    return found


def is_loopback(ip: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(ip).is_loopback


def loopback_only_namespace() -> bool:
    """Whether this process runs where only the loopback interface is up (scripts/loopback_only.sh,
    which `make test` uses): then nothing it starts can reach beyond 127.0.0.0/8."""
    try:
        up = [line.split()[0].rstrip(":") for line in Path("/proc/net/dev").read_text().splitlines()[2:]]
    except OSError:
        return False
    return up == ["lo"]
