"""Three objectives end to end: accuracy, counted MACs and measured latency (``metrics:`` picks them
among what moe_digits reports), with MO-ASHA ranking at its rungs, the 3-D hypervolume against an
inferred reference point, the front table, the parent's description and the figures (pairwise
projections; an interactive 3-D view)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests import harness

SPACE = """\
name: three
objective: moe_digits
metrics: {accuracy: max, macs_per_sample: min, latency_ms_per_sample: min}
search: {searcher: tpe, num_samples: 6, max_concurrent: 2, seed: 0, scheduler: moasha, moasha_grace: 1}
fixed: {epochs: 3, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: [topk, hash, softmax]}
  n_experts: {type: int, low: 2, high: 16}
  k: {type: int, low: 1, high: 2}
"""
NAMES = ("accuracy", "macs_per_sample", "latency_ms_per_sample")


def test_a_three_objective_search_runs_end_to_end(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    from gatesearch.search.front.pareto import hypervolume, pareto_ranks

    (tmp_path / "three.yaml").write_text(SPACE)
    text = harness.gatesearch_ok("run", "three.yaml", "--output-dir", "out", "--quiet", log=tmp_path / "run.log")
    assert all(n in text for n in NAMES)  # the front table has a column per objective
    client = MlflowClient(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("three")
    [parent] = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("gatesearch.role") == "search"]
    assert parent.data.params["objectives"] == "accuracy:max,macs_per_sample:min,latency_ms_per_sample:min"
    ref = json.loads(parent.data.params["reference_point"])
    assert len(ref) == 3
    front = json.loads(Path(client.download_artifacts(parent.info.run_id, "pareto_front.json", str(tmp_path)))
                       .read_text())
    trials = json.loads(Path(client.download_artifacts(parent.info.run_id, "trials.json", str(tmp_path)))
                        .read_text())["trials"]
    values = np.array([[t[n] for n in NAMES] for t in trials], dtype=float)
    ranks = pareto_ranks(values, ("max", "min", "min"))
    assert {r["run_id"] for r in front["front"]} == {t["run_id"] for t, k in zip(trials, ranks) if k == 0}
    assert parent.data.metrics["hypervolume"] == hypervolume(values, ("max", "min", "min"), np.array(ref))
    assert parent.data.metrics["hypervolume"] > 0
    assert "scheduler_stopped" in parent.data.metrics  # MO-ASHA ran (its rung decisions rank 3-vectors)
    assert "latency_ms_per_sample" in parent.data.tags["mlflow.note.content"]  # the description's front table
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"pareto_front.png", "pareto_front.html", "hypervolume_over_time.png"} <= artifacts
    page = Path(client.download_artifacts(parent.info.run_id, "pareto_front.html", str(tmp_path))).read_text()
    assert "scatter3d" in page
    children = [r for r in client.search_runs([exp.experiment_id]) if r.info.run_id != parent.info.run_id]
    for c in children:  # every trial (finished or stopped at a rung by MO-ASHA) measured its latency
        assert c.data.metrics["latency_ms_per_sample"] > 0 and c.data.metrics["expert_load_cv"] >= 0
