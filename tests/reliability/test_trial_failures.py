"""Guarantee: a trial that raises and a trial whose loss goes NaN end FAILED in Ray and in
MLflow (error tag + error.txt), after the configured number of retries; they are kept off the
Pareto front and the search finishes with the other trials (``fail_fast: 0``: failures in a row do
not stop it; tests/reliability/test_fail_fast.py has the default)."""

import collections
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.tracking.tracker import TAG_ERROR, Tracker
from gatesearch.spaces import parse_space_file

SPACE = """\
name: faulty
objective: tests.reliability.faulty:FaultyDigits
search: {searcher: random, num_samples: 7, max_concurrent: 2, seed: 4, max_failures: 1, front_every: 2,
         fail_fast: 0}
fixed: {epochs: 2, expert_hidden: 16, expert_out: 8, gate: topk, n_experts: 4}
params:
  fault: {type: categorical, choices: [none, raise, nan]}
  k: {type: int, low: 1, high: 2}
  lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
"""


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_failed_trials_are_recorded_and_kept_off_the_front(ray_session, tmp_path: Path):
    result = run_search(parse_space_file(SPACE, str(tmp_path / "faulty.yaml")), output_dir=tmp_path / "runs")
    tracker = Tracker(result.tracking_uri, "faulty")
    children = tracker.children(result.parent_run_id)
    assert len(children) == 7
    by_fault = collections.defaultdict(list)
    for c in children:
        by_fault[c.params["fault"]].append(c)
    assert by_fault["raise"] and by_fault["nan"] and by_fault["none"], "seed must draw every kind of trial"

    for c in by_fault["none"]:
        assert c.status == "FINISHED" and "pareto_rank" in c.tags
    client = MlflowClient(result.tracking_uri)
    for fault, needle in (("raise", "injected fault"), ("nan", "non-finite")):
        for c in by_fault[fault]:
            assert c.status == "FAILED", (fault, c.status)
            assert needle in c.tags[TAG_ERROR], c.tags[TAG_ERROR]
            assert c.tags["gatesearch.retries"] == "1"  # max_failures: 1 -> retried once, then FAILED
            assert "pareto_rank" not in c.tags
            text = Path(client.download_artifacts(c.run_id, "error.txt", str(tmp_path))).read_text()
            assert needle in text
    assert result.failed == len(by_fault["raise"]) + len(by_fault["nan"])
    front_ids = {r["run_id"] for r in result.front}
    assert front_ids and front_ids <= {c.run_id for c in by_fault["none"]}
    assert len(result.trials) == len(by_fault["none"])  # the front is computed over finished trials only
    assert client.get_run(result.parent_run_id).info.status == "FINISHED"
