"""Guarantee: a search whose driver is SIGKILLed mid-way is finished by `gatesearch resume`:
exactly the budget of finished trials, one child run per trial, the same parent run, and a
logged front equal to the one recomputed from the finished children."""

import json
import signal
import uuid
from pathlib import Path

import numpy as np
from mlflow.tracking import MlflowClient

from search.runner import read_front
from search.tracking import Tracker
from tests import harness

BUDGET = 8
SPACE = f"""\
name: killed
objective: moe_digits
search: {{searcher: tpe, num_samples: {BUDGET}, max_concurrent: 2, seed: 5, front_every: 2}}
fixed: {{epochs: 10, expert_hidden: 32, expert_out: 16}}
params:
  gate: {{type: categorical, choices: [topk, hash, softmax]}}
  n_experts: {{type: int, low: 2, high: 8}}
  k: {{type: int, low: 1, high: 2}}
  lr: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true}}
"""


def test_sigkilled_driver_is_resumed_without_duplicates(tmp_path: Path):
    (tmp_path / "space.yaml").write_text(SPACE)
    out, db = tmp_path / "out", tmp_path / "out" / "mlflow.db"
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", log=log, **{key: value})
    try:
        harness.wait_for(lambda: harness.finished_children(db) >= 2, 240, "2 finished trials", proc, log)
        proc.send_signal(signal.SIGKILL)  # the driver only, mid-search
        proc.wait(timeout=30)
    finally:
        harness.kill_env(marker)  # Ray agents a SIGKILLed driver leaves behind
    finished_before = harness.finished_children(db)
    assert finished_before < BUDGET, "the search finished before it could be killed; make trials longer"

    resume_log = tmp_path / "resume.log"
    resumed = harness.gatesearch("resume", "out", log=resume_log, **{key: value})
    try:
        assert resumed.wait(timeout=400) == 0, harness.tail(resume_log)
    finally:
        harness.kill_env(marker)
    assert "Pareto front of killed" in resume_log.read_text()

    uri = f"sqlite:///{db}"
    tracker = Tracker(uri, "killed")
    parents = tracker.searches()
    assert len(parents) == 1  # the same parent run, not a second search
    parent = parents[0][0]
    client = MlflowClient(uri)
    assert client.get_run(parent).info.status == "FINISHED"
    assert client.get_run(parent).data.tags["gatesearch.resumes"] == "1"
    children = tracker.children(parent)
    finished = [c for c in children if c.status == "FINISHED"]
    assert len(finished) == BUDGET
    trial_ids = [c.trial_id for c in children]
    assert len(trial_ids) == len(set(trial_ids))  # one child run per trial
    # anything else is a trial lost between Ray snapshots, retired with a reason
    for c in children:
        if c.status != "FINISHED":
            assert c.status == "KILLED" and "gatesearch.orphaned" in c.tags, (c.status, c.tags)

    # the front logged on the parent equals the one recomputed from every finished child
    names, modes = ("accuracy", "macs_per_sample"), ("max", "min")
    _, values, ranks, rows, front = read_front(tracker, parent, names, modes)
    assert len(rows) == BUDGET
    logged = json.loads(Path(client.download_artifacts(parent, "pareto_front.json", str(tmp_path))).read_text())
    assert sorted(r["run_id"] for r in logged["front"]) == sorted(r["run_id"] for r in front)
    assert all(c.tags["pareto_rank"] == str(int(r)) for c, r in zip(finished, ranks))
    # the hypervolume history on the parent ends at the full budget
    hv = tracker.metric_history(parent, "hypervolume")
    assert max(step for step, _ in hv) == BUDGET and np.isfinite([v for _, v in hv]).all()
