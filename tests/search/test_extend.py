"""`gatesearch extend <search dir> --num-samples N`: a finished search gets N more trials in the same
MLflow parent run, the searcher continuing from its saved state (its deduplication memory too: no
configuration is trained twice across the extension); an extension interrupted with Ctrl-C is
finished by `gatesearch resume`, every epoch logged once; wrong arguments fail fast."""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.tracking.tracker import Tracker
from tests import harness

SPACE = """\
name: grow
objective: moe_digits
search: {searcher: tpe, num_samples: 3, max_concurrent: 1, seed: 0, front_every: 2}
fixed: {epochs: EPOCHS, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: [hash, softmax, topk, dselect_k]}
  n_experts: {type: int, low: 2, high: 4}
"""


def _children(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    tracker = Tracker(uri, "grow")
    [(parent, params)] = tracker.searches()
    return uri, parent, params, tracker.children(parent), tracker


def _configs(children) -> list[tuple[str, str]]:
    return [(c.params["gate"], c.params["n_experts"]) for c in children if c.status == "FINISHED"]


@pytest.mark.slow  # over 30 s; `make test-all` and CI (make test-slow) run it
def test_extend_adds_trials_to_the_same_parent_without_retraining_any(tmp_path):
    (tmp_path / "space.yaml").write_text(SPACE.replace("EPOCHS", "1"))
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    harness.gatesearch_ok("run", "space.yaml", "--output-dir", "out", "--quiet", log=tmp_path / "run.log", marker=marker)
    out = harness.gatesearch_ok("extend", "out", "--num-samples", "2", "--quiet", log=tmp_path / "extend.log",
                                marker=marker)
    assert "Pareto front of grow (5 finished trials, 0 failed)" in out, out[-2000:]
    uri, parent, params, children, _ = _children(tmp_path)
    configs = _configs(children)
    assert len(configs) == 5 and len(set(configs)) == 5, configs  # the memory continued: no repeat trained
    assert params["extend1_num_samples"] == "2"
    client = MlflowClient(uri)
    assert client.get_run(parent).info.status == "FINISHED"
    assert client.get_run(parent).data.tags["gatesearch.extensions"] == "1"
    front = json.loads(Path(client.download_artifacts(parent, "trials.json", str(tmp_path))).read_text())
    assert len(front["trials"]) == 5
    # the Ray experiments: the search dir and the extension beside it, recorded in the manifest
    [manifest] = (tmp_path / "out" / "ray").glob("*/gatesearch.json")
    recorded = json.loads(manifest.read_text())
    assert recorded["status"] == "finished" and recorded["settings"]["num_samples"] == 5
    assert [e[1] for e in recorded["extensions"]] == [2]
    assert (manifest.parent.parent / recorded["extensions"][0][0]).is_dir()


@pytest.mark.slow
def test_an_interrupted_extension_is_finished_by_resume(tmp_path):
    epochs = 3
    (tmp_path / "space.yaml").write_text(SPACE.replace("EPOCHS", str(epochs)))
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    harness.gatesearch_ok("run", "space.yaml", "--output-dir", "out", "--quiet", log=tmp_path / "run.log", marker=marker)
    db = tmp_path / "out" / "mlflow.db"
    key, value = marker.split("=")
    log = tmp_path / "extend.log"
    proc = harness.gatesearch("extend", "out", "--num-samples", "3", log=log, **{key: value})
    try:
        harness.wait_for(lambda: harness.finished_children(db) >= 4, 300, "the first extension trial", proc, log,
                         every=0.2)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    finally:
        harness.kill_env(marker)
    text = log.read_text()
    assert "finish it with `gatesearch resume " in text, text[-2000:]
    # extending it again before it is finished is refused, with the fix
    refused = harness.gatesearch("extend", "out", "-n", "1", log=tmp_path / "refused.log")
    assert refused.wait(timeout=60) == 2
    assert "is interrupted, not finished; finish it first with `gatesearch resume" in \
        " ".join((tmp_path / "refused.log").read_text().split())
    # the extension's own folder names its search dir
    [search_dir] = [m.parent for m in (tmp_path / "out" / "ray").glob("*/gatesearch.json")]
    from gatesearch.search.lifecycle.manifest import extension_base, find_search_dir
    assert extension_base(search_dir.parent / f"{search_dir.name}.extend1") == search_dir
    assert find_search_dir(search_dir.parent / f"{search_dir.name}.extend1") == search_dir
    out = harness.gatesearch_ok("resume", "out", "--quiet", log=tmp_path / "resume.log", marker=marker)
    assert "Pareto front of grow (6 finished trials, 0 failed)" in out, out[-2000:]
    uri, parent, _, children, tracker = _children(tmp_path)
    configs = _configs(children)
    assert len(configs) == 6 and len(set(configs)) == 6, configs
    for c in children:
        assert c.status == "FINISHED" or "gatesearch.orphaned" in c.tags, (c.status, c.tags)
        if c.status == "FINISHED":
            steps = sorted(step for step, _ in tracker.metric_history(c.run_id, "accuracy"))
            assert steps == list(range(1, epochs + 1)), (c.trial_id, steps)
    assert MlflowClient(uri).get_run(parent).info.status == "FINISHED"


def test_extend_arguments_fail_fast(tmp_path):
    for args, words in ((["extend", "nowhere", "-n", "2"], "no such directory"),
                        (["extend", str(tmp_path), "-n", "2"], "no gatesearch search here"),
                        (["extend", str(tmp_path), "-n", "0"], "--num-samples: must be >= 1")):
        log = tmp_path / "x.log"
        proc = harness.gatesearch(*args, log=log)
        assert proc.wait(timeout=60) == 2, log.read_text()
        assert words in log.read_text(), log.read_text()
