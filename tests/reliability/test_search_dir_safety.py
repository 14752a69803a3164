"""A search dir on a shared machine (:mod:`gatesearch.search.system.dir_guard`): files owner-only; a search
dir someone else could write is refused by resume, extend and --warm-start (unless --trust-dir); one
driver at a time; a `run` that fails at its start removes what it made and never what it did not."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.lifecycle import runner
from gatesearch.search.lifecycle.manifest import MANIFEST, Manifest
from gatesearch.search.lifecycle.runner import extend_search, resume_search, run_search
from gatesearch.search.system.dir_guard import (
    OUTPUT_LOCK,
    SearchDirInUse,
    SearchDirLock,
    UntrustedSearchDir,
    check_trusted,
)
from gatesearch.spaces import parse_space_file
from tests import harness

SPACE = """\
name: guarded
objective: moe_digits
search: {searcher: random, num_samples: 1, max_concurrent: 1, seed: 0}
fixed: {epochs: 1, expert_hidden: 16, expert_out: 8, n_experts: 4}
params:
  gate: {type: categorical, choices: [hash, softmax]}
"""


@pytest.fixture(scope="module")
def finished(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")
    result = run_search(parse_space_file(SPACE, str(root / "s.yaml")), output_dir=root / "out")
    return root, Path(result.search_dir), result


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_everything_a_search_writes_is_owner_only(finished):
    root, search_dir, _ = finished
    out = root / "out"
    assert _mode(out) == 0o700 and _mode(search_dir) == 0o700
    assert _mode(search_dir / MANIFEST) == 0o600
    for path in [out / "mlflow.db", out / "optuna.db", *search_dir.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            assert _mode(path) & 0o077 == 0, (path, oct(_mode(path)))


def test_a_search_dir_others_can_write_is_refused_unless_trusted(finished, tmp_path):
    _, search_dir, _ = finished
    manifest = search_dir / MANIFEST
    os.chmod(manifest, 0o620)  # group-writable
    try:
        with pytest.raises(UntrustedSearchDir, match=r"can be written by its group.*--trust-dir"):
            extend_search(search_dir, num_samples=1)
        sf = parse_space_file(SPACE, str(tmp_path / "s.yaml"))
        with pytest.raises(UntrustedSearchDir, match=r"gatesearch run --warm-start"):
            run_search(sf, output_dir=tmp_path / "out2", warm_start=str(search_dir))
        assert not (tmp_path / "out2").exists()  # refused before anything was written
        check_trusted(search_dir, trust=True)  # --trust-dir
        log = tmp_path / "cli.log"
        proc = harness.gatesearch("extend", str(search_dir), "-n", "1", log=log)
        assert proc.wait(timeout=120) == 2
        text = " ".join(log.read_text().split())
        assert f"{manifest} can be written by its group (mode 0620)" in text and "runs code as you" in text
    finally:
        os.chmod(manifest, 0o600)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_file_owned_by_someone_else_is_refused(finished):
    _, search_dir, _ = finished
    planted = search_dir / "planted.pkl"
    planted.write_bytes(b"x")
    os.chown(planted, 65534, 65534)
    try:
        with pytest.raises(UntrustedSearchDir, match=r"planted.pkl is owned by .*uid 65534"):
            check_trusted(search_dir)
    finally:
        planted.unlink()


def test_one_driver_at_a_time_and_the_second_is_told_who(finished, tmp_path):
    _, search_dir, _ = finished
    with SearchDirLock(search_dir):
        with pytest.raises(SearchDirInUse, match=rf"driven by pid {os.getpid()} on host {socket.gethostname()}"):
            extend_search(search_dir, num_samples=1)
        log = tmp_path / "cli.log"
        proc = harness.gatesearch("extend", str(search_dir), "-n", "1", log=log)
        assert proc.wait(timeout=120) == 2
        assert f"driven by pid {os.getpid()}" in " ".join(log.read_text().split())
    # a driver that dies (even SIGKILLed) leaves no lock behind
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from gatesearch.search.system.dir_guard import "
                               "SearchDirLock; SearchDirLock(sys.argv[1]).acquire(); print('held', flush=True); "
                               "time.sleep(60)", str(search_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(SearchDirInUse, match=rf"pid {holder.pid} "):
        SearchDirLock(search_dir).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    SearchDirLock(search_dir).acquire().release()


def test_a_failed_start_removes_only_what_it_made(ray_session, tmp_path, monkeypatch):
    """The start fails after the parent run and the search dir exist: both go; the output folder it
    created goes too, unless another driver uses it by then (two searches into one new folder)."""
    def fail(self, search_dir):
        raise RuntimeError("the store went away")

    monkeypatch.setattr(Manifest, "write", fail)
    sf = parse_space_file(SPACE, str(tmp_path / "s.yaml"))
    alone = tmp_path / "alone"
    with pytest.raises(RuntimeError, match="went away"):
        run_search(sf, output_dir=alone)
    assert not alone.exists()  # created by it, used by no one else: nothing half-written

    shared = tmp_path / "shared"
    made = {}
    original = runner._start_steps

    def another_driver_arrives(*args, **kwargs):  # a second search starts into the folder meanwhile
        fd = os.open(shared / OUTPUT_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        made["fd"] = fd
        (shared / "ray" / "theirs-123").mkdir(parents=True)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "_start_steps", another_driver_arrives)
    with pytest.raises(RuntimeError, match="went away"):
        run_search(sf, output_dir=shared)
    os.close(made["fd"])
    assert (shared / "ray" / "theirs-123").is_dir()  # theirs stays
    assert [p.name for p in (shared / "ray").iterdir()] == ["theirs-123"]  # ours is gone
    client = MlflowClient(f"sqlite:///{shared / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("guarded").experiment_id], run_view_type=3)
    assert runs and all(r.info.lifecycle_stage == "deleted" for r in runs)  # our parent run is deleted


def test_resume_of_another_users_style_output_layout_names_the_fix(tmp_path):
    """A search dir made elsewhere (world-writable, as `cp -r` under umask 000 would leave it)."""
    search_dir = tmp_path / "out" / "ray" / f"x-{uuid.uuid4().hex[:6]}"
    search_dir.mkdir(parents=True)
    Manifest(search_id="s", parent_run_id="p", tracking_uri="sqlite:////nowhere/mlflow.db", experiment="x",
             objective="moe_digits", space_file=str(tmp_path / "s.yaml"), settings={}, output_dir=str(tmp_path / "out"),
             status="interrupted").write(search_dir)
    os.chmod(search_dir, 0o777)
    with pytest.raises(UntrustedSearchDir, match=r"can be written by its group and everyone.*chmod -R go-w"):
        resume_search(search_dir)
