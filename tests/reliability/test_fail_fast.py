"""A missing service fails fast and clearly, before anything is written (through the CLI)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests import harness

SPACE = """objective: moe_digits
search: {num_samples: 2}
fixed: {epochs: 1}
params:
  gate: {type: categorical, choices: [topk, hash]}
"""


def _run(tmp_path: Path, *args: str) -> tuple[int, str, float]:
    (tmp_path / "s.yaml").write_text(SPACE)
    t0 = time.monotonic()
    done = subprocess.run([str(harness.BIN / "gatesearch"), "run", str(tmp_path / "s.yaml"), "--output-dir",
                           str(tmp_path / "out"), *args], capture_output=True, text=True, env=harness.env(),
                          timeout=120)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - t0


def test_a_ray_address_where_nothing_listens_fails_in_seconds(tmp_path):
    port = harness.free_port()
    rc, out, took = _run(tmp_path, "--address", f"127.0.0.1:{port}")
    assert rc == 2, out
    assert f"no Ray cluster at 127.0.0.1:{port}" in out and "ray start --head" in out
    assert "Traceback" not in out and len(out.strip().splitlines()) <= 3
    assert took < 30, took  # 5 s connection check + start-up imports; it used to retry for minutes
    assert not (tmp_path / "out").exists()  # no output folder, no MLflow run


def test_an_unreachable_tracking_server_fails_in_one_line(tmp_path):
    port = harness.free_port()
    rc, out, took = _run(tmp_path, "--tracking-uri", f"http://127.0.0.1:{port}")
    assert rc == 2, out
    assert f"MLflow tracking server at http://127.0.0.1:{port} is not reachable" in out
    assert "Traceback" not in out and "MlflowException" not in out
    assert took < 30, took
    assert not (tmp_path / "out").exists()


def test_a_trial_no_node_can_hold_is_rejected_before_it_waits_forever(tmp_path):
    (tmp_path / "big.yaml").write_text(SPACE.replace("num_samples: 2", "num_samples: 2, cpus_per_trial: 512"))
    done = subprocess.run([str(harness.BIN / "gatesearch"), "run", str(tmp_path / "big.yaml"), "--output-dir",
                           str(tmp_path / "out")], capture_output=True, text=True, env=harness.env(), timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "cpus_per_trial=512" in out and "no node of the Ray cluster can hold one trial" in out
    assert not (tmp_path / "out").exists()


def test_an_unexpected_error_is_one_line_without_traceback(tmp_path):
    (tmp_path / "s.yaml").write_text(SPACE)
    # a tracking URI scheme MLflow does not know: not a service we check, so it fails inside MLflow
    done = subprocess.run([str(harness.BIN / "gatesearch"), "pareto", "--tracking-uri", "nosuch://x"],
                          capture_output=True, text=True, env=harness.env(), timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode in (1, 2), out
    assert "Traceback" not in out and out.strip().startswith("error:")
