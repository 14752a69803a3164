"""A user's own objective through the CLI, as a user runs it (a real local Ray instance, a real
SQLite MLflow store): a plain ``def train(config, report)`` with ``metrics:`` in the space file,
and an ``objectives.Objective`` subclass that names no front columns, each in a module beside its
space file (the CLI puts that folder on the path of the driver and of the Ray workers).

One search runs a function whose searched ``mode`` says how it misbehaves, so one search shows
every outcome: trials that report their epochs (or leave ``epoch`` out) finish with epochs 1..n
and are not taken for stopped early; a NaN in a report, an inf in the returned metrics and an
optimised metric never reported fail the trial (FAILED, tag ``gatesearch.error`` and ``error.txt``
naming the metric), keep it off the front, and are counted as failed, while the search finishes."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.tracking.store import TAG_ERROR, TAG_RANK
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.search.tracking.trial_sink import TAG_STOPPED
from tests import harness

EPOCHS = 3

FUNCTION = '''\
"""A training function that computes its metrics without training; `mode` says how it misbehaves."""
import math


def train(config, report):
    mode, width = config["mode"], config["width"]
    score = 0.0
    for epoch in range(1, config["epochs"] + 1):
        score, cost = width / 100 + epoch / 1000, float(width * 10)
        metrics = {"score": score, "cost": cost, "loss": 1.0 / epoch}
        if mode == "nan_report" and epoch == 2:
            metrics["score"] = math.nan
        if mode == "missing_metric":
            metrics["costs"] = metrics.pop("cost")  # a misspelt name: `cost` is never reported
        if mode == "no_epoch":
            metrics["loss"] = math.nan  # not optimised: may be NaN
        else:
            metrics["epoch"] = epoch
        report(metrics)
    if mode == "inf_return":
        return {"cost": math.inf}
    return {"final_score": score}  # a final metric, added to the last epoch
'''

# random search, seed 4: the 6 proposals are inf_return, no_epoch, nan_report, ok, no_epoch,
# missing_metric (checked below: every mode must occur)
SPACE = f"""\
name: user-fn
objective: userfn:train
metrics: {{score: max, cost: min}}
search: {{searcher: random, num_samples: 6, max_concurrent: 2, seed: 4, dedup: false, fail_fast: 0}}
fixed: {{epochs: {EPOCHS}}}
params:
  mode: {{type: categorical, choices: [ok, nan_report, inf_return, no_epoch, missing_metric]}}
  width: {{type: int, low: 1, high: 50}}
  lr: {{type: float, low: 1.0e-3, high: 1.0e-1, log: true}}
"""

FINISHING = ("ok", "no_epoch")
# mode -> words the failed trial's error tag and error.txt must hold
FAILING = {"nan_report": ("NonFiniteMetric", "'score'", "nan", "at epoch 2"),
           "inf_return": ("NonFiniteMetric", "'cost'", "inf", "returned"),
           "missing_metric": ("MissingMetric", "'cost'", "never reported")}

CLASS_MODULE = '''\
from gatesearch.objectives import Metric, Objective, ParamRule, ParamSchema


class Quadratic(Objective):
    """A class objective that names no front_columns; its metrics are computed, not trained."""

    name = "userclass:Quadratic"
    objectives = (Metric("score", "max", "higher is better"), Metric("cost", "min", "lower is better"))
    schema = ParamSchema(rules={"a": ParamRule("float", "a number", low=0, high=1),
                                "b": ParamRule("int", "a count", low=1, high=9),
                                "colour": ParamRule("str", "a label"), "epochs": ParamRule("int", "epochs")})
    defaults = {"epochs": 2, "colour": "red"}

    def run(self, config, *, report=None, device="cpu"):
        for epoch in range(1, config["epochs"] + 1):
            report({"epoch": epoch, "score": config["a"] * config["b"] + epoch / 100, "cost": float(config["b"])})
        return {}
'''

CLASS_SPACE = """\
name: user-class
objective: userclass:Quadratic
search: {searcher: random, num_samples: 3, max_concurrent: 2, seed: 0}
fixed: {colour: blue}
params:
  a: {type: float, low: 0, high: 1}
  b: {type: int, low: 1, high: 9}
"""


def _run_cli(tmp_path: Path, files: dict[str, str], space: str) -> str:
    """Write ``files`` to ``tmp_path``, run ``gatesearch run <space>`` there, return its output."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return harness.gatesearch_ok("run", space, "--allow-failed", log=tmp_path / "run.log")


def _header(text: str, *metrics: str) -> str:
    """The front table's header row (not a progress line, which names metrics too)."""
    return next(line for line in text.splitlines()
                if "┃" in line and "trial" in line and all(m in line for m in metrics))


def _artifact(client: MlflowClient, run_id: str, path: str, dst: Path) -> str:
    dst.mkdir(exist_ok=True)
    return Path(client.download_artifacts(run_id, path, str(dst))).read_text()


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_a_training_function_finishes_or_fails_each_trial_with_the_reason(tmp_path: Path):
    text = _run_cli(tmp_path, {"userfn.py": FUNCTION, "space.yaml": SPACE}, "space.yaml")
    uri = f"sqlite:///{tmp_path / 'gatesearch-runs' / 'mlflow.db'}"
    tracker, client = Tracker(uri, "user-fn"), MlflowClient(uri)
    [(parent, params)] = tracker.searches()
    assert params["objectives"] == "score:max,cost:min"
    children = tracker.children(parent)
    assert len(children) == 6, [c.status for c in children]
    by_mode = defaultdict(list)
    for c in children:
        by_mode[c.params["mode"]].append(c)
    assert set(by_mode) == {*FINISHING, *FAILING}, "the seed must draw every mode"

    # child runs are named by the searched parameters: key=value, floats to 3 digits, then #n
    for c in children:
        name = client.get_run(c.run_id).info.run_name
        m = re.fullmatch(r"mode=(\w+) width=(\d+) lr=([0-9.e-]+) #(\d)", name)
        assert m, name
        assert (m[1], m[2]) == (c.params["mode"], c.params["width"]), (name, c.params)
        assert m[3] == f"{float(c.params['lr']):.3g}", (name, c.params["lr"])

    for mode in FINISHING:  # epochs 1..n, each once, with or without `epoch` in the reports
        for c in by_mode[mode]:
            assert c.status == "FINISHED", (mode, c.status, c.tags.get(TAG_ERROR))
            assert TAG_STOPPED not in c.tags and TAG_ERROR not in c.tags, c.tags
            for metric in ("score", "cost", "loss") if mode == "ok" else ("score", "cost"):
                steps = [step for step, _ in tracker.metric_history(c.run_id, metric)]
                assert steps == list(range(1, EPOCHS + 1)), (mode, metric, steps)
            # the returned metric joins the last epoch, once; the reported ones are not logged again
            assert [step for step, _ in tracker.metric_history(c.run_id, "final_score")] == [EPOCHS]
            assert c.metrics["score"] == c.metrics["final_score"] == int(c.params["width"]) / 100 + EPOCHS / 1000
    for c in by_mode["no_epoch"]:  # a NaN in a metric that is not optimised is not fatal (MLflow gets
        # finite values only: Tracker.log_batch)
        assert all(math.isnan(v) for _, v in tracker.metric_history(c.run_id, "loss"))

    for mode, words in FAILING.items():
        for c in by_mode[mode]:
            assert c.status == "FAILED", (mode, c.status)
            error = c.tags[TAG_ERROR]
            full = _artifact(client, c.run_id, "error.txt", tmp_path / c.run_id)
            for word in words:
                assert word in error, (mode, word, error)
                assert word in full, (mode, word, full[-2000:])
            assert TAG_RANK not in c.tags
    # nothing was sent for the epoch whose score was NaN, nor after it
    for c in by_mode["nan_report"]:
        assert [step for step, _ in tracker.metric_history(c.run_id, "score")] == [1]
    # the reported epochs of a trial whose returned metrics are bad are logged, all finite
    for c in by_mode["inf_return"]:
        history = tracker.metric_history(c.run_id, "cost")
        assert [step for step, _ in history] == list(range(1, EPOCHS + 1))
        assert all(math.isfinite(v) for _, v in history)

    # the front: finished trials only, with the searched parameters as its columns
    finished = {c.run_id for mode in FINISHING for c in by_mode[mode]}
    front = json.loads(_artifact(client, parent, "pareto_front.json", tmp_path / "parent"))
    front_ids = {row["run_id"] for row in front["front"]}
    assert front_ids and front_ids <= finished, (front_ids, finished)
    assert all({"mode", "width", "lr"} <= set(row) for row in front["front"]), front["front"]
    assert client.get_run(parent).info.status == "FINISHED"

    n_failed = sum(len(by_mode[m]) for m in FAILING)
    assert f"Pareto front of user-fn ({len(finished)} finished trials, {n_failed} failed)" in " ".join(text.split()), text[-3000:]
    # the last line says so (exit 3 without --allow-failed: tests/reliability/test_fail_fast.py)
    assert text.strip().splitlines()[-1].startswith(f"{n_failed} of {len(finished) + n_failed} trials failed")
    ended = next(line for line in text.splitlines() if "search ended:" in line)
    assert f"{len(finished)}/6 finished" in ended and f"{n_failed} failed, 0 stopped early" in ended, ended
    header = _header(text, "score", "cost")
    for column in ("mode", "width", "lr"):
        assert column in header, header


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_a_class_objective_without_columns_shows_its_searched_parameters(tmp_path: Path):
    text = _run_cli(tmp_path, {"userclass.py": CLASS_MODULE, "space.yaml": CLASS_SPACE}, "space.yaml")
    assert "Pareto front of user-class (3 finished trials, 0 failed)" in " ".join(text.split()), text[-3000:]  # the title may wrap
    header = _header(text, "score", "cost")
    assert re.search(r"\ba\b", header) and re.search(r"\bb\b", header), header
    assert "colour" not in header and "epochs" not in header, header  # fixed values and defaults are not columns

    uri = f"sqlite:///{tmp_path / 'gatesearch-runs' / 'mlflow.db'}"
    tracker, client = Tracker(uri, "user-class"), MlflowClient(uri)
    [(parent, _)] = tracker.searches()
    children = tracker.children(parent)
    assert len(children) == 3 and all(c.status == "FINISHED" for c in children)
    front = json.loads(_artifact(client, parent, "pareto_front.json", tmp_path / "parent"))
    assert front["front"]
    for row in front["front"]:
        assert {"a", "b"} <= set(row) and "colour" not in row, row
        child = next(c for c in children if c.run_id == row["run_id"])
        assert str(row["b"]) == child.params["b"], (row, child.params)
    trials = json.loads(_artifact(client, parent, "trials.json", tmp_path / "trials"))["trials"]
    assert len(trials) == 3 and all({"a", "b"} <= set(t) for t in trials), trials


def test_default_columns_follow_each_space_file(tmp_path: Path, monkeypatch):
    """The registry keeps one instance of a class objective: a second space file searching other
    parameters must show those, not the first file's (in-process, as `run_search` twice)."""
    from gatesearch.search.config.validate import validate_space_file
    from gatesearch.spaces import parse_space_file

    module = f"userclass_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(CLASS_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    columns = []
    for params in ("a: {type: float, low: 0, high: 1}", "b: {type: int, low: 1, high: 9}", "a: 0.5"):
        text = f"objective: {module}:Quadratic\nparams:\n  {params}\n"
        objective, _ = validate_space_file(parse_space_file(text, str(tmp_path / "space.yaml")))
        columns.append(objective.front_columns)
    assert columns == [("a",), ("b",), ()]
