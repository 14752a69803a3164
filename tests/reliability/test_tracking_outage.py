"""Guarantee: the MLflow tracking server going away for ~20 s does not crash a search; what
was logged meanwhile is buffered and written once it is back (nothing lost). If it never
comes back within tracking_timeout_s, the search stops with a clear error."""

import contextlib
import time
from pathlib import Path

import pytest

from gatesearch.search.tracking.tracker import Tracker
from tests import harness

BUDGET = 8
EPOCHS = 3


def space(timeout_s: float) -> str:
    return f"""\
name: outage
objective: tests.reliability.faulty:FaultyDigits
search: {{searcher: random, num_samples: {BUDGET}, max_concurrent: 2, seed: 3, front_every: 2,
         tracking_timeout_s: {timeout_s}}}
fixed: {{epochs: {EPOCHS}, sleep_s: 1.0, expert_hidden: 16, expert_out: 8, gate: topk, n_experts: 4, fault: none}}
params:
  k: {{type: int, low: 1, high: 2}}
  lr: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true}}
"""


@pytest.fixture
def server(tmp_path: Path):
    srv = harness.MlflowServer(tmp_path / "mlflow").start()
    try:
        yield srv
    finally:
        srv.stop()


@contextlib.contextmanager
def search_past_first_trial(tmp_path: Path, server, timeout_s: float):
    """`gatesearch run` logging to ``server``, yielded once a trial has finished; killed on exit."""
    (tmp_path / "space.yaml").write_text(space(timeout_s=timeout_s))
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--tracking-uri", server.uri, log=log)
    try:
        harness.wait_for(lambda: harness.finished_children(server.root / "server.db") >= 1, 240, "a finished trial",
                         proc, log)
        yield proc, log
    finally:
        harness.kill_group(proc)


def assert_every_epoch_logged(tracker: Tracker, children) -> None:
    for c in children:  # every epoch of every trial reached the store, in order
        steps = [s for s, _ in tracker.metric_history(c.run_id, "accuracy")]
        assert sorted(set(steps)) == list(range(1, EPOCHS + 1)), (c.trial_id, steps)


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_outage_is_buffered_and_nothing_is_lost(tmp_path: Path, server):
    with search_past_first_trial(tmp_path, server, timeout_s=120) as (proc, log):
        server.stop()
        down_at = time.monotonic()
        time.sleep(20)
        assert proc.poll() is None, "the search died while the tracking server was down:\n" + harness.tail(log)
        server.start()
        assert proc.wait(timeout=400) == 0, harness.tail(log)
    assert time.monotonic() - down_at > 20

    tracker = Tracker(server.uri, "outage")
    [(parent, _)] = tracker.searches()
    children = tracker.children(parent)
    assert [c.status for c in children] == ["FINISHED"] * BUDGET
    assert_every_epoch_logged(tracker, children)
    for c in children:
        assert "gatesearch.node_id" in c.tags and "pareto_rank" in c.tags
    parent_metrics = {k: v for k, v in tracker.client.get_run(parent).data.metrics.items()}
    assert parent_metrics["tracking_retries"] > 0  # the outage was felt and ridden out
    assert parent_metrics["tracking_outage_seconds"] >= 5
    assert max(s for s, _ in tracker.metric_history(parent, "hypervolume")) == BUDGET
    assert tracker.client.get_run(parent).info.status == "FINISHED"


@pytest.mark.slow
def test_server_that_never_returns_stops_the_search_with_a_clear_error(tmp_path: Path, server):
    with search_past_first_trial(tmp_path, server, timeout_s=5) as (proc, log):
        server.stop()
        code = proc.wait(timeout=300)
    text = " ".join(log.read_text().split())
    assert code == 2, text[-3000:]
    assert f"MLflow at {server.uri} was unreachable for more than 5 s" in text
    assert "tracking_timeout_s" in text and "gatesearch resume" in text
    assert "Traceback" not in text

    # once the server is back, resume writes what Ray recorded but MLflow never received
    server.start()
    resume_log = tmp_path / "resume.log"
    proc = harness.gatesearch("resume", "out", log=resume_log)
    try:
        assert proc.wait(timeout=400) == 0, harness.tail(resume_log)
    finally:
        harness.kill_group(proc)
    tracker = Tracker(server.uri, "outage")
    [(parent, _)] = tracker.searches()
    children = tracker.children(parent)
    assert len({c.trial_id for c in children}) == len(children)
    assert all(c.status in ("FINISHED", "KILLED") for c in children), [c.status for c in children]
    finished = [c for c in children if c.status == "FINISHED"]
    assert len(finished) == BUDGET
    assert_every_epoch_logged(tracker, finished)
