"""`gatesearch run --address --tracking-uri` on a real cluster: a `ray start --head` node and a
second `ray start` worker node on 127.0.0.1, logging to a real `mlflow server` (SQLite backend)
started by the test and stopped by pid."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.front_report import read_front
from gatesearch.search.tracking import Tracker
from tests import harness

SPACE = """\
name: on-cluster
objective: moe_digits
search: {searcher: random, num_samples: 6, max_concurrent: 2, seed: 2, front_every: 3}
fixed: {epochs: 6, expert_hidden: 32, expert_out: 16}
params:
  gate: {type: categorical, choices: [topk, hash, softmax]}
  n_experts: {type: int, low: 2, high: 8}
  k: {type: int, low: 1, high: 2}
  lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
"""


@pytest.fixture
def cluster(tmp_path: Path):
    server = harness.MlflowServer(tmp_path / "mlflow")
    nodes = harness.RayNodes(tmp_path)
    try:
        server.start()
        nodes.start_head(cpus=1)
        nodes.add_worker(cpus=1)
        yield nodes, server
    finally:
        nodes.stop()
        server.stop()


def test_search_on_two_node_cluster_logs_to_tracking_server(tmp_path: Path, cluster):
    nodes, server = cluster
    (tmp_path / "space.yaml").write_text(SPACE)
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--address", nodes.address,
                              "--tracking-uri", server.uri, log=log)
    try:
        assert proc.wait(timeout=400) == 0, harness.tail(log)
    finally:
        harness.kill_group(proc)
    text = log.read_text()
    assert "Pareto front of on-cluster (6 finished trials, 0 failed)" in text
    assert f"Inspect it in MLflow: {server.uri}" in text
    assert not (tmp_path / "out" / "mlflow.db").exists()  # everything went to the server

    tracker = Tracker(server.uri, "on-cluster")
    [(parent, params)] = tracker.searches()
    children = tracker.children(parent)
    assert len(children) == 6 and {c.status for c in children} == {"FINISHED"}
    # trials ran on both nodes (one CPU each, two at a time)
    assert len({c.tags["gatesearch.node_id"] for c in children}) == 2
    # Ray registers `ray start --node-ip-address 127.0.0.1` under the machine's routable address
    assert len({c.tags["gatesearch.node_ip"] for c in children}) == 1
    # the front and its artifacts live on the server
    _, _, _, rows, front = read_front(tracker, parent, ("accuracy", "macs_per_sample"), ("max", "min"))
    logged = json.loads(Path(MlflowClient(server.uri).download_artifacts(parent, "pareto_front.json",
                                                                         str(tmp_path))).read_text())
    assert [r["run_id"] for r in logged["front"]] == [r["run_id"] for r in front]
    assert set(tracker.list_artifacts(parent)) >= {"pareto_front.json", "pareto_front.csv", "pareto_front.png",
                                                   "space.yaml", "trials.json"}
    assert server.proc.poll() is None  # the server is ours and still up; the fixture stops it by pid
