"""What a finished search says beyond its front: parameter importances per objective (PED-ANOVA) and
the hypervolume over finished trials, epochs trained and wall clock, on the parent run, in the result,
in `gatesearch pareto --importance` and in load_search."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from gatesearch.search.front.importance import FRONT_TARGET, MIN_TRIALS, importances
from gatesearch.search.front.progress_figure import hypervolume_figure, hypervolume_series


def _study(n: int, seed: int = 0):
    """Two objectives: acc (max) grows with x, cost (min) grows with y; g and z are noise."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    d = optuna.distributions
    study = optuna.create_study(directions=["maximize", "minimize"])
    rng = random.Random(seed)
    for _ in range(n):
        x, y, g = rng.random(), rng.random(), rng.choice(["a", "b"])
        params = {"x": x, "y": y, "g": g, "fixed": 3}
        dists = {"x": d.FloatDistribution(0, 1), "y": d.FloatDistribution(0, 1),
                 "g": d.CategoricalDistribution(["a", "b"]), "fixed": d.CategoricalDistribution([3])}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists,
                                                  values=[x + 0.01 * rng.random(), y + 0.01 * rng.random()]))
    return study


def test_importances_find_the_parameter_each_objective_depends_on():
    found = importances(_study(60), ["acc", "cost"], ["max", "min"])
    assert set(found) == {"acc", "cost", FRONT_TARGET}
    assert max(found["acc"], key=found["acc"].get) == "x"  # maximised: high x is good, not low
    assert max(found["cost"], key=found["cost"].get) == "y"
    assert found["acc"]["x"] > 0.5 and found["cost"]["y"] > 0.5
    for imp in found.values():
        assert set(imp) == {"x", "y", "g"}  # the fixed value is not a searched parameter
        assert sum(imp.values()) == pytest.approx(1.0)
        assert list(imp.values()) == sorted(imp.values(), reverse=True)


def test_too_few_trials_give_no_importances():
    assert importances(_study(MIN_TRIALS - 1), ["acc", "cost"], ["max", "min"]) == {}


def test_the_hypervolume_series_aligns_the_histories_on_their_steps():
    series = hypervolume_series({"hypervolume": [(4, 1.0), (2, 0.5), (8, 1.5)],
                                 "hypervolume_epochs": [(4, 12.0), (8, 24.0)],
                                 "hypervolume_seconds": [(2, 3.0), (4, 9.0), (8, 20.0)]})
    assert series["trials"] == [2.0, 4.0, 8.0] and series["hypervolume"] == [0.5, 1.0, 1.5]
    assert series["epochs"][1:] == [12.0, 24.0] and series["epochs"][0] != series["epochs"][0]  # NaN: not logged
    assert series["seconds"] == [3.0, 9.0, 20.0]
    fig = hypervolume_figure(series, ["accuracy", "macs_per_sample"], [0.5, 3000.0], "t")
    assert "reference point: accuracy 0.5, macs_per_sample 3,000" in fig._suptitle.get_text()
    assert [ax.get_xlabel() for ax in fig.axes] == ["finished trials", "epochs trained", "wall clock (minutes)"]


SPACE = """\
name: insights
objective: moe_digits
search: {searcher: random, num_samples: 8, max_concurrent: 2, seed: 0, front_every: 3}
fixed: {epochs: 2, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: [topk, hash, softmax]}
  n_experts: {type: int, low: 2, high: 8}
  lr: {type: float, low: 1.0e-3, high: 5.0e-2, log: true}
"""


def test_a_finished_search_logs_its_importances_and_hypervolume_over_time(ray_session, tmp_path: Path):
    from mlflow.tracking import MlflowClient
    from typer.testing import CliRunner

    from gatesearch.search.lifecycle.load import load_search
    from gatesearch.search.lifecycle.runner import run_search
    from gatesearch.search.ui.cli import app
    from gatesearch.spaces import parse_space_file

    result = run_search(parse_space_file(SPACE, str(tmp_path / "insights.yaml")), output_dir=tmp_path / "out")
    assert len(result.trials) == 8
    assert set(result.importances) == {"accuracy", "macs_per_sample", FRONT_TARGET}
    for imp in result.importances.values():
        assert set(imp) <= {"gate", "n_experts", "lr"} and sum(imp.values()) == pytest.approx(1.0)
    client = MlflowClient(result.tracking_uri)
    artifacts = {a.path for a in client.list_artifacts(result.parent_run_id)}
    assert {"importances.json", "importances.png", "hypervolume_over_time.json", "hypervolume_over_time.png",
            "report.html", "pareto_front.html"} <= artifacts
    logged = json.loads(Path(client.download_artifacts(result.parent_run_id, "importances.json", str(tmp_path)))
                        .read_text())
    assert logged["importances"] == result.importances and "PED-ANOVA" in logged["method"]
    hv = {m.step: m.value for m in client.get_metric_history(result.parent_run_id, "hypervolume")}
    epochs = {m.step: m.value for m in client.get_metric_history(result.parent_run_id, "hypervolume_epochs")}
    seconds = {m.step: m.value for m in client.get_metric_history(result.parent_run_id, "hypervolume_seconds")}
    assert sorted(hv) == sorted(epochs) == sorted(seconds) and max(hv) == 8  # one value per step, to the last trial
    steps = sorted(hv)
    assert [epochs[s] for s in steps] == sorted(epochs[s] for s in steps) and epochs[8] == 16  # 8 trials x 2 epochs
    assert all(epochs[s] >= 2 * s for s in steps)  # at least the finished trials' epochs
    assert [seconds[s] for s in steps] == sorted(seconds[s] for s in steps) and seconds[8] > 0
    report = Path(client.download_artifacts(result.parent_run_id, "report.html", str(tmp_path))).read_text()
    assert report.count("data:image/png;base64,") == 2 and "pareto_front.html" in report
    # the command line and the notebook API read them back
    out = CliRunner().invoke(app, ["pareto", "--output-dir", str(tmp_path / "out"), "--importance"])
    assert out.exit_code == 0, out.output
    assert "parameter importances" in out.output and "pareto front" in out.output
    assert load_search(result.search_dir).importances == result.importances
