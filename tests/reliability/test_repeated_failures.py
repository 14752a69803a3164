"""Fail fast: a training function that raises in epoch 2, under an 8-trial search, costs at most
``fail_fast`` (3) trials plus those already running: the search stops resumably, says so once with
the user's file:line and exits 4. After the fix, ``gatesearch resume`` runs the rest of the budget;
a search that ends with failed trials says "k of n trials failed" on its last line and exits 3
(``--allow-failed``: 0). Through the CLI, on a real local Ray instance and MLflow store."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from gatesearch.search.lifecycle.manifest import Manifest
from gatesearch.search.tracking.tracker import Tracker
from tests import harness

BROKEN = '''\
def train(config, report):
    for epoch in range(1, config["epochs"] + 1):
        if epoch == 2:
            raise ValueError(f"shape mismatch in layer {config['width']}")
        report({"score": config["width"] / 100, "cost": float(config["width"])})
'''
FIXED = BROKEN.replace('        if epoch == 2:\n            raise ValueError(f"shape mismatch in layer {config[\'width\']}")\n',
                       "")
SPACE = """\
name: flaky
objective: flakyfn:train
metrics: {score: max, cost: min}
search: {searcher: random, num_samples: 8, max_concurrent: 2, seed: 1}
fixed: {epochs: 3}
params:
  width: {type: int, low: 1, high: 100}
"""


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_a_function_that_raises_in_epoch_2_costs_a_few_trials_then_resumes_after_the_fix(tmp_path: Path):
    assert "raise" not in FIXED
    (tmp_path / "flakyfn.py").write_text(BROKEN)
    (tmp_path / "space.yaml").write_text(SPACE)
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    key, value = marker.split("=")
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", log=log, **{key: value})
    try:
        assert proc.wait(timeout=300) == 4, harness.tail(log)
    finally:
        harness.kill_env(marker)
    text = " ".join(log.read_text().split())
    where = f"{tmp_path / 'flakyfn.py'}:4"
    assert f"stopped: 3 trials in a row failed (the first trials of the search), all the same way at {where}" in text
    assert "ValueError: shape mismatch in layer" in text and "then `gatesearch resume" in text, text[-2000:]
    assert text.count("stopped: ") == 1  # said once
    tracker = Tracker(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}", "flaky")
    [(parent, _)] = tracker.searches()
    failed = [c for c in tracker.children(parent) if c.status == "FAILED"]
    assert 3 <= len(failed) <= 3 + 1  # the budget was not spent: at most N, and one that was running
    assert len(tracker.children(parent)) <= 3 + 2
    [search_dir] = [m.parent for m in (tmp_path / "out" / "ray").glob("*/gatesearch.json")]
    assert Manifest.read(search_dir).status == "interrupted"

    (tmp_path / "flakyfn.py").write_text(FIXED)  # the fix; resume runs the rest of the budget
    log2 = tmp_path / "resume.log"
    proc = harness.gatesearch("resume", "out", log=log2, **{key: value})
    try:
        assert proc.wait(timeout=300) == 3, harness.tail(log2)  # finished, with the failed trials: exit 3
    finally:
        harness.kill_env(marker)
    lines = log2.read_text().strip().splitlines()
    n_failed = len(failed)
    assert lines[-1].startswith(f"{n_failed} of 8 trials failed"), lines[-3:]
    children = tracker.children(parent)
    assert len(children) == 8 and sum(c.status == "FINISHED" for c in children) == 8 - n_failed
    assert Manifest.read(search_dir).status == "finished"
