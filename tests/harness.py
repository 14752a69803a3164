"""Real processes for the cluster and fault-injection tests: the `gatesearch` CLI as a
subprocess, `ray start` head/worker nodes and an `mlflow server`, all on 127.0.0.1, each
started in its own session and stopped by pid/process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    e["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="gsr", dir="/tmp")  # never share the test session's instance
    # Ray workers (also those of `ray start` nodes) import user objectives from tests/
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), e.get("PYTHONPATH", "")) if p)
    e.pop("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", None)  # set by the in-process local instance; nodes need clusters on
    e.update(extra)
    return e


def spawn(args: list[str], log: Path, **extra: str) -> subprocess.Popen:
    """Start ``args`` in a new session (so its whole process group can be killed)."""
    fh = open(log, "wb")
    return subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=env(**extra), start_new_session=True,
                            cwd=str(log.parent))


def gatesearch(*args: str, log: Path, **extra: str) -> subprocess.Popen:
    return spawn([str(BIN / "gatesearch"), *args], log, **extra)


def gatesearch_ok(*args: str, log: Path, timeout: float = 400, marker: str | None = None) -> str:
    """Run ``gatesearch <args>`` in ``log``'s folder to the end; assert it exits 0 (the log's tail
    otherwise); return its output. Every process it started (marked with ``marker`` in their
    environment, a fresh one if None) is killed afterwards, Ray's included."""
    import uuid

    marker = marker or f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    proc = gatesearch(*args, log=log, **{key: value})
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
    """A real ``mlflow server`` (SQLite backend, local artifacts) on 127.0.0.1."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> "MlflowServer":
        import urllib.request

        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = spawn([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
                           "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
                           "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"],
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
