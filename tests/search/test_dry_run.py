"""`gatesearch try`: one trial in this process, in seconds, no Ray and nothing written; each mistake a
training function can make is caught there, in our words, with the user's file:line."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatesearch.search.ui.cli import app

FUNCTIONS = '''\
import math

import numpy as np
import torch


def good(config, report):
    for epoch in range(config["epochs"]):
        report({"accuracy": torch.tensor(0.5 + 0.01 * config["k"]), "cost": np.float32(config["k"] * 10)})


def raises_in_epoch_2(config, report):
    for epoch in range(1, config["epochs"] + 1):
        if epoch == 2:
            raise RuntimeError("diverged at epoch 2")
        report({"accuracy": 0.5, "cost": 1.0})


def forgets_a_metric(config, report):
    report({"accuracy": 0.5})


def reports_nothing(config, report):
    pass


def reads_a_missing_key(config, report):
    seed = config["seed"]
    report({"accuracy": 0.5, "cost": 1.0})


def reports_a_vector(config, report):
    report({"accuracy": torch.ones(3), "cost": 1.0})


def reports_nan(config, report):
    report({"accuracy": math.nan, "cost": 1.0})


def no_report(config):
    return {"accuracy": 1.0, "cost": 1.0}


def checkpointing(config, report, restore=None, save=None):
    model = torch.nn.Linear(2, 2)
    for epoch in range(1, config["epochs"] + 1):
        save({"epoch": epoch, "model": model.state_dict()})
        report({"accuracy": 0.5, "cost": 1.0})
'''


def _space(tmp_path: Path, function: str, epochs: int = 3) -> tuple[Path, str]:
    module = f"dry_{uuid.uuid4().hex[:8]}"  # a module name of its own: the test process imports each
    (tmp_path / f"{module}.py").write_text(FUNCTIONS)
    path = tmp_path / "space.yaml"
    path.write_text(f"""\
objective: {module}:{function}
metrics: {{accuracy: max, cost: min}}
fixed: {{epochs: {epochs}}}
params:
  n_experts: {{type: int, low: 2, high: 8}}
  k: {{type: int, low: 1, high: n_experts}}
""")
    return path, module


def _try(path: Path, *args: str):
    res = CliRunner().invoke(app, ["try", str(path), *args])
    return res.exit_code, " ".join(res.output.split())


def test_a_good_function_is_run_once_and_its_reports_shown(tmp_path):
    path, _ = _space(tmp_path, "good")
    code, out = _try(path, "--set", "k=2", "--set", "n_experts=4")
    assert code == 0, out
    assert 'config: {"n_experts": 4, "k": 2}' in out and "(epochs 3 -> 1 for the dry run)" in out
    assert "epoch 1:" in out and "accuracy=0.52 cost=20" in out  # a 0-d tensor and a numpy scalar, as numbers
    assert "ok: accuracy (max), cost (min) reported, finite numbers" in out and " s per epoch here" in out
    assert not (tmp_path / "gatesearch-runs").exists() and not list(tmp_path.glob("*.db"))  # nothing written


@pytest.mark.parametrize("function, epochs, words, line", [
    ("raises_in_epoch_2", 2, "RuntimeError: diverged at epoch 2", 15),
    ("forgets_a_metric", 0, "the trial never reported 'cost'", None),
    ("reports_nothing", 0, "the trial reported nothing", None),
    ("reads_a_missing_key", 0, "config['seed']: the trial's configuration has no 'seed'", 28),
    ("reports_a_vector", 0, "'accuracy' is a torch.Tensor of shape (3,), not a number", 33),
    ("reports_nan", 0, "optimised metric 'accuracy' is nan at epoch 1", 37),
])
def test_each_mistake_is_caught_in_our_words_with_the_users_line(tmp_path, function, epochs, words, line):
    path, module = _space(tmp_path, function)
    code, out = _try(path, "--epochs", str(epochs))
    assert code == 1, out
    assert words in out and "the search would fail every trial like this one" in out, out
    if line is not None:
        assert f"in your code at {tmp_path / module}.py:{line}" in out, out


def test_a_function_without_report_is_refused_at_the_objective_line(tmp_path):
    path, _ = _space(tmp_path, "no_report")
    code, out = _try(path)
    assert code == 2 and f"{path}:1: objective:" in out and "def train(config, report)" in out, out


def test_a_checkpointing_function_has_its_states_saved_and_read_back(tmp_path):
    path, _ = _space(tmp_path, "checkpointing")
    code, out = _try(path, "--epochs", "2")
    assert code == 0, out
    assert "checkpoint: 2 state(s) saved and read back" in out


def test_a_built_in_objective_and_a_wrong_set(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("objective: moe_digits\nfixed: {epochs: 4, expert_hidden: 8, expert_out: 8}\n"
                    "params:\n  gate: {type: categorical, choices: [hash, topk]}\n  n_experts: {type: int, low: 2, high: 4}\n")
    code, out = _try(path)
    assert code == 0 and "macs_per_sample" in out and "MACs per sample" in out, out
    code, out = _try(path, "--set", "n_expert=3")
    assert code == 2 and "did you mean 'n_experts'" in out
