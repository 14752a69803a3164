"""`gatesearch run --address --tracking-uri` on a real cluster: a `ray start --head` node and a
second `ray start` worker node on 127.0.0.1, with Ray's token auth on (the test session's token),
logging to a real `mlflow server` (SQLite backend) started by the test and stopped by pid. Every TCP
connection seen while the search runs is between loopback addresses (`make test` runs the suite in
a network namespace of its own with only `lo`); a driver without the cluster's token is refused."""

import json
import os
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.front.report import read_front
from gatesearch.search.tracking.tracker import Tracker
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


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_search_on_two_node_cluster_logs_to_tracking_server(tmp_path: Path, cluster):
    nodes, server = cluster
    (tmp_path / "space.yaml").write_text(SPACE)
    log = tmp_path / "run.log"
    seen: set[tuple[str, int, str, int]] = set()
    done = threading.Event()

    def watch():  # every established connection while the search runs (ss -tn, from /proc)
        while not done.is_set():
            seen.update(harness.tcp_connections())
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--address", nodes.address,
                              "--tracking-uri", server.uri, log=log)
    try:
        assert proc.wait(timeout=400) == 0, harness.tail(log)
    finally:
        done.set()
        harness.kill_group(proc)
    watcher.join()
    assert len(seen) > 10  # the driver, the nodes and the tracking server talked
    if harness.loopback_only_namespace():
        beyond = sorted(c for c in seen if not (harness.is_loopback(c[0]) and harness.is_loopback(c[2])))
        assert not beyond, f"connections beyond loopback: {beyond[:5]}"
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
    # Ray registers `ray start --node-ip-address 127.0.0.1` under the machine's routable address,
    # which in the tests' own network namespace is 127.0.0.1
    node_ips = {c.tags["gatesearch.node_ip"] for c in children}
    assert len(node_ips) == 1
    if harness.loopback_only_namespace():
        assert node_ips == {"127.0.0.1"}
    # the front and its artifacts live on the server
    _, _, _, rows, front = read_front(tracker, parent, ("accuracy", "macs_per_sample"), ("max", "min"))
    logged = json.loads(Path(MlflowClient(server.uri).download_artifacts(parent, "pareto_front.json",
                                                                         str(tmp_path))).read_text())
    assert [r["run_id"] for r in logged["front"]] == [r["run_id"] for r in front]
    assert set(tracker.list_artifacts(parent)) >= {"pareto_front.json", "pareto_front.csv", "pareto_front.png",
                                                   "space.yaml", "trials.json"}
    assert server.proc.poll() is None  # the server is ours and still up; the fixture stops it by pid


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
@pytest.mark.parametrize("token", ["wrong", None])
def test_a_driver_without_the_clusters_token_is_refused(tmp_path: Path, token):
    """The head asks for the session's token; a driver with another token, or none, cannot join it
    (and says how to pass one), in seconds, leaving nothing behind."""
    nodes = harness.RayNodes(tmp_path)
    try:
        nodes.start_head(cpus=1)
        (tmp_path / "space.yaml").write_text(SPACE)
        log = tmp_path / "run.log"
        env = {"RAY_AUTH_TOKEN": "0" * 64} if token == "wrong" else {"RAY_AUTH_TOKEN": None, "RAY_AUTH_MODE": None,
                                                                      "HOME": str(tmp_path)}  # no ~/.ray token
        proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--address", nodes.address, log=log,
                                  **env)
        try:
            assert proc.wait(timeout=120) == 2, harness.tail(log)
        finally:
            harness.kill_group(proc)
        text = " ".join(log.read_text().split())
        assert f"the Ray cluster at {nodes.address} did not let this driver in" in text, text[-2000:]
        assert "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH=" in text
        assert not (tmp_path / "out").exists()  # refused before anything was written
        assert os.environ["RAY_AUTH_TOKEN"] not in log.read_text()
    finally:
        nodes.stop()
