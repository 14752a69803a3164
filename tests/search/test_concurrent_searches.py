"""Searches started at once into one output folder share its SQLite stores: creating them
(MLflow's and Optuna's schemas) is serialised by a lock file, so none dies with "table ... already
exists" and every search's parent run is in the one store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import env, gatesearch, kill_group, sqlite_count, tail

OPEN_AT = """
import sys, time
from gatesearch.search.tracking.optuna_mirror import OptunaMirror
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import Float, Space

out, start = sys.argv[1], float(sys.argv[2])
Tracker.warm_up(f"sqlite:///{out}/mlflow.db")  # the imports, before the common start
import optuna  # noqa: F401
while time.time() < start:
    time.sleep(0.001)
tracker = Tracker(f"sqlite:///{out}/mlflow.db", "together", artifact_location=f"file://{out}/artifacts")
OptunaMirror(f"sqlite:///{out}/optuna.db", sys.argv[3], Space({"x": Float(0.0, 1.0)}), ["a"], ["max"]).study
print("experiment", tracker.experiment_id)
"""


def test_processes_opening_one_fresh_store_at_the_same_instant_all_succeed(tmp_path):
    """The race itself, made certain: three processes open a new store in the same millisecond
    (without the lock, two of three died on MLflow's or Optuna's schema creation)."""
    start = time.time() + 10  # after every process has imported MLflow and Optuna
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_AT, str(tmp_path), str(start), f"study{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env())
             for i in range(3)]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n\n".join(o[-3000:] for o in outs)
    assert len({o.split("experiment", 1)[1].strip() for o in outs}) == 1  # one experiment, found by all
    assert sqlite_count(tmp_path / "mlflow.db", "select count(*) from experiments where name = 'together'") == 1
    assert sqlite_count(tmp_path / "optuna.db", "select count(*) from studies") == 3


SPACE = """\
name: together
objective: moe_digits
search: {num_samples: 2, max_concurrent: 1, seed: 0}
fixed: {epochs: 1, expert_hidden: 8, expert_out: 8}
params:
  gate: {type: categorical, choices: [topk, hash]}
"""


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_two_searches_at_once_into_one_fresh_folder(tmp_path: Path):
    (tmp_path / "space.yaml").write_text(SPACE)
    out = tmp_path / "out"  # fresh: both create the stores
    procs = [gatesearch("run", str(tmp_path / "space.yaml"), "--output-dir", str(out), "--quiet",
                        log=tmp_path / f"search{i}.log") for i in range(2)]
    try:
        for p in procs:
            p.wait(timeout=400)
    finally:
        for p in procs:
            kill_group(p)
    logs = [tail(tmp_path / f"search{i}.log", 6000) for i in range(2)]
    assert [p.returncode for p in procs] == [0, 0], "\n\n".join(logs)
    assert all("2 finished trials, 0 failed" in log for log in logs), "\n\n".join(logs)
    db = out / "mlflow.db"
    parents = sqlite_count(db, "select count(*) from runs r join tags t on r.run_uuid = t.run_uuid where "
                               "t.key = 'gatesearch.role' and t.value = 'search' and r.status = 'FINISHED'")
    assert parents == 2
    assert sqlite_count(db, "select count(*) from experiments where name = 'together'") == 1
    assert sqlite_count(out / "optuna.db", "select count(*) from studies") == 2
