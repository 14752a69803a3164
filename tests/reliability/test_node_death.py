"""Guarantee: when a worker node dies mid-search, its trials are retried on the surviving node
(FailureConfig.max_failures), continue from their last per-epoch checkpoint, and every planned
trial ends with exactly one finished child run."""

import sqlite3
from pathlib import Path

import pytest

from gatesearch.search.tracking.tracker import Tracker
from tests import harness

BUDGET, EPOCHS = 6, 4
SPACE = """\
name: node-death
objective: tests.reliability.faulty:FaultyDigits
search: {{searcher: random, num_samples: {budget}, max_concurrent: 2, seed: 1, max_failures: 3}}
fixed: {{epochs: {epochs}, sleep_s: 1.0, expert_hidden: 16, expert_out: 8, gate: topk, n_experts: 4, fault: none,
        epoch_log: "{log}"}}
params:
  k: {{type: int, low: 1, high: 2}}
  lr: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true}}
"""


def running_nodes(db: Path) -> int:
    """Distinct Ray nodes currently running a trial (from the child runs' placement tags)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            rows = con.execute("select count(distinct t.value) from runs r join tags t on r.run_uuid = t.run_uuid "
                               "where t.key = 'gatesearch.node_id' and r.status = 'RUNNING'").fetchone()
            return int(rows[0])
    except sqlite3.Error:
        return 0


@pytest.fixture
def nodes(tmp_path: Path):
    cluster = harness.RayNodes(tmp_path)
    try:
        cluster.start_head(cpus=1)
        cluster.add_worker(cpus=1)
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.slow  # over 30 s; `make test-all` and CI (make test-slow) run it
def test_trials_on_a_killed_node_are_retried_elsewhere(tmp_path: Path, nodes):
    epochs = tmp_path / "epochs.log"
    (tmp_path / "space.yaml").write_text(SPACE.format(budget=BUDGET, epochs=EPOCHS, log=epochs))
    db = tmp_path / "out" / "mlflow.db"
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--address", nodes.address, log=log)
    try:
        # the placement tags come with a trial's first result: each running trial has a checkpoint
        harness.wait_for(lambda: running_nodes(db) == 2, 240, "a trial running on each node", proc, log)
        assert nodes.kill_node("w1") > 0
        assert proc.wait(timeout=400) == 0, harness.tail(log)
    finally:
        harness.kill_group(proc)

    tracker = Tracker(f"sqlite:///{db}", "node-death")
    [(parent, _)] = tracker.searches()
    children = tracker.children(parent)
    assert [c.status for c in children] == ["FINISHED"] * BUDGET, harness.tail(log)
    assert len({c.trial_id for c in children}) == BUDGET  # exactly one child run per trial
    retried = [c for c in children if int(c.tags.get("gatesearch.retries", 0)) >= 1]
    assert retried, "the trial on the killed node was not retried"
    # the retried trials continued from their checkpoints: at most the epoch in flight is trained
    # again per retry (from scratch, a retried trial repeats every epoch it had done)
    assert all(c.metrics.get("resumed_from_epoch", 0) >= 1 for c in retried), [c.metrics for c in retried]
    trained = len(epochs.read_text().split())
    retries = sum(int(c.tags.get("gatesearch.retries", 0)) for c in children)
    assert BUDGET * EPOCHS <= trained <= BUDGET * EPOCHS + retries < 2 * BUDGET * EPOCHS
    for c in children:  # every epoch in MLflow once, the retried trials' included
        steps = sorted(step for step, _ in tracker.metric_history(c.run_id, "accuracy"))
        assert steps == list(range(1, EPOCHS + 1)), (c.trial_id, steps)
    assert "Pareto front of node-death (6 finished trials, 0 failed)" in log.read_text()
