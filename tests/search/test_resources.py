"""Per-trial GPU resources on a local Ray instance with 2 declared (fake) GPUs."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def test_gpu_trials_are_limited_by_gpus_and_see_their_gpu(tmp_path):
    script = Path(__file__).with_name("gpu_cluster_check.py")
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="gsgpu", dir="/tmp")}  # short AF_UNIX paths
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["n"] == 4 and set(info["status"]) == {"FINISHED"}
    assert info["max_overlap"] == 2  # 2 GPUs, 1 per trial: 2 at once, never more, despite max_concurrent 4
    assert set(info["gpu_ids"]) == {"0", "1"}  # each trial saw exactly one assigned GPU id
    # no CUDA on CI machines: the trial falls back to the CPU, but saw its Ray GPU assignment
    assert set(info["device"]) <= {"cpu", "cuda"}
