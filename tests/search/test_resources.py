"""Per-trial GPU resources on a local Ray instance with 2 declared (fake) GPUs."""

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

from tests import harness


@pytest.mark.slow  # over 30 s; `make test-all` and CI (make test-slow) run it
def test_gpu_trials_are_limited_by_gpus_and_see_their_gpu(tmp_path):
    script = Path(__file__).with_name("gpu_cluster_check.py")
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="gsgpu", dir="/tmp")}  # short AF_UNIX paths
    proc = harness.run_starting_ray([sys.executable, str(script), str(tmp_path)], timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["n"] == 4 and set(info["status"]) == {"FINISHED"}
    assert info["max_overlap"] == 2  # 2 GPUs, 1 per trial: 2 at once, never more, despite max_concurrent 4
    assert set(info["gpu_ids"]) == {"0", "1"}  # each trial saw exactly one assigned GPU id
    # no CUDA on CI machines: the trial falls back to the CPU, but saw its Ray GPU assignment
    assert set(info["device"]) <= {"cpu", "cuda"}


@pytest.mark.slow  # over 30 s; `make test-all` and CI (make test-slow) run it
def test_resources_per_configuration_are_packed_as_declared_and_an_impossible_one_fails_fast(tmp_path):
    """#22 item 2: `resources:` by n_experts on 2 (fake) GPUs: 4-expert trials take 0.5 GPU (up to
    4 at once), 16-expert trials 2 GPUs (alone, with both ids); a row asking 3 GPUs fails before
    anything is written, naming the configuration."""
    script = Path(__file__).with_name("resources_cluster_check.py")
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="gsres", dir="/tmp")}
    proc = harness.run_starting_ray([sys.executable, str(script), str(tmp_path)], timeout=400, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    trials = info["trials"]
    assert trials and all(t["status"] == "FINISHED" for t in trials)
    big = [t for t in trials if t["n"] == 16]
    small = [t for t in trials if t["n"] == 4]
    assert big and small, trials
    for t in big:  # 2 GPUs: both ids, and no other trial ran meanwhile
        assert sorted(t["gpu_ids"].split(",")) == ["0", "1"], t
        others = [o for o in trials if o is not t and o["start"] < t["end"] and t["start"] < o["end"]]
        assert not others, (t, others)
    assert all(len(t["gpu_ids"].split(",")) == 1 for t in small)
    overlap = max(sum(1 for o in small if o["start"] <= s["start"] < o["end"]) for s in small)
    assert overlap >= 2  # half-GPU trials share the GPUs
    assert "gpus_per_trial=3" in info["too_big"] and "n_experts" in info["too_big"]
    assert "no node of the Ray cluster can hold" in info["too_big"] and not info["big_dir_written"]
