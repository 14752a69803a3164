"""`make gpu-check` (scripts/gpu_check.py): without a GPU it says so and exits 0 at once; with a GPU
its Python's torch cannot use, it says how to fix that. (The checks themselves need a GPU: their
CPU dry run, `python scripts/gpu_check.py --device cpu`, is too slow for the suite.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(Path("/dev/nvidia0").exists(), reason="a GPU is here: run make gpu-check itself")


def test_without_a_gpu_it_says_so_and_exits_0():
    done = subprocess.run(["make", "--no-print-directory", "gpu-check", f"GPU_PYTHON={sys.executable}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no CUDA GPU on this machine" in done.stdout and "--device cpu" in done.stdout


def test_a_gpu_its_torch_cannot_use_is_an_error_with_the_fix(tmp_path):
    fake = tmp_path / "nvidia-smi"  # an NVIDIA driver seems present, but this torch is a CPU build
    fake.write_text("#!/bin/sh\necho fake\n")
    fake.chmod(0o755)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "torch cannot use it" in done.stdout and "make gpu-check" in done.stdout
