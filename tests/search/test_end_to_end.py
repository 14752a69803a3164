"""A real 4-trial search: Ray Tune + Optuna (multi-objective) + MLflow SQLite store."""

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from gatesearch.search.front.report import log_front
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.search.ui.cli import app
from gatesearch.spaces import parse_space_file

SPACE = """\
name: e2e
objective: moe_digits
search: {searcher: nsga2, num_samples: 4, max_concurrent: 2, seed: 1, front_every: 2}
fixed: {epochs: 3, expert_hidden: 32, expert_out: 16}
params:
  gate: {type: categorical, choices: [topk, hash, dselect_k, comet]}
  n_experts: {type: int, low: 4, high: 8}
  k: {type: int, low: 1, high: 2}
  gamma: {type: float, low: 0.1, high: 2.0, log: true, when: {gate: [dselect_k, comet]}}
  lr: {type: float, low: 3.0e-3, high: 3.0e-2, log: true}
"""
METRICS = {"accuracy", "macs_per_sample", "val_loss", "train_loss", "active_experts", "weight_sparsity", "epoch",
           "test_accuracy"}


def dominated(a, b):
    """b dominates a (accuracy max, macs min)."""
    return b[0] >= a[0] and b[1] <= a[1] and (b[0] > a[0] or b[1] < a[1])


@pytest.fixture(scope="module")
def finished(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    path = out / "space.yaml"
    path.write_text(SPACE)
    from gatesearch.spaces import load_space_file

    result = run_search(load_space_file(path), output_dir=out / "runs")
    return result


def test_mlflow_holds_one_parent_and_four_children(finished):
    client = MlflowClient(finished.tracking_uri)
    assert finished.tracking_uri.startswith("sqlite:////")
    exp = client.get_experiment_by_name("e2e")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("gatesearch.role") == "search"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == finished.parent_run_id]
    assert len(parents) == 1 and len(children) == 4 and len(runs) == 5
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.params["searcher"] == "nsga2"
    for c in children:
        assert c.info.status == "FINISHED"
        assert METRICS <= set(c.data.metrics)
        assert c.data.params["gate"] in {"topk", "hash", "dselect_k", "comet"}
        assert c.data.params["epochs"] == "3"
        hist = client.get_metric_history(c.info.run_id, "accuracy")
        assert sorted(m.step for m in hist) == [1, 2, 3]
        assert 0.0 < c.data.metrics["accuracy"] <= 1.0 and c.data.metrics["macs_per_sample"] > 0
        if c.data.params["gate"] == "comet":
            assert c.data.params["tree_depth_effective"] in {"2", "3"}  # ceil(log2 n) for n in 4..8


def test_tagged_front_equals_the_recomputed_non_dominated_set(finished):
    client = MlflowClient(finished.tracking_uri)
    exp = client.get_experiment_by_name("e2e")
    children = [r for r in client.search_runs([exp.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == finished.parent_run_id]
    pts = {r.info.run_id: (r.data.metrics["accuracy"], r.data.metrics["macs_per_sample"]) for r in children}
    expected = {i for i, p in pts.items() if not any(dominated(p, q) for j, q in pts.items() if j != i)}
    tagged = {r.info.run_id for r in children if r.data.tags.get("pareto_rank") == "0"}
    assert tagged == expected and expected
    assert {row["run_id"] for row in finished.front} == expected
    arts = {a.path for a in client.list_artifacts(finished.parent_run_id)}
    assert {"pareto_front.json", "pareto_front.csv", "pareto_front.png", "pareto_front.html", "space.yaml",
            "trials.json"} <= arts
    html = Path(client.download_artifacts(finished.parent_run_id, "pareto_front.html")).read_text()
    assert "<script src=" not in html.replace('<script src="data:', "")  # plotly.js inlined: works offline
    assert all(r["run_id"] in html for r in finished.trials)  # hover/click data of every trial
    local = client.download_artifacts(finished.parent_run_id, "pareto_front.json")
    saved = json.loads(Path(local).read_text())
    assert {r["run_id"] for r in saved["front"]} == expected
    assert saved["hypervolume"] == pytest.approx(finished.hypervolume) and finished.hypervolume > 0


def test_the_parent_describes_the_front_and_children_are_sortable_by_rank(finished):
    """The parent's description (Markdown) is the front, each trial linked to its run; every
    child has pareto_rank as a metric equal to its tag; run names say the configuration."""
    client = MlflowClient(finished.tracking_uri)
    parent = client.get_run(finished.parent_run_id)
    note = parent.data.tags["mlflow.note.content"]
    exp_id = parent.info.experiment_id
    for row in finished.front:
        # the model-training view of the run (#23 item 7)
        assert f"]({'#'}/experiments/{exp_id}/runs/{row['run_id']}?workflowType=machine_learning)" in note
    assert f"{len(finished.front)} of 4 finished trials" in note and "hypervolume" in note
    share = parent.data.metrics["hypervolume_share"]
    assert 0.0 < share <= 1.0
    children = [r for r in client.search_runs([exp_id]) if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    numbers = set()
    for c in children:
        assert c.data.metrics["pareto_rank"] == float(c.data.tags["pareto_rank"])
        name, _, number = c.info.run_name.rpartition(" #")
        gate, n, k = name.split()[:3]
        assert gate == c.data.params["gate"] and n == f"n{c.data.params['n_experts']}"
        assert k == f"k{c.data.params['k_effective']}"
        numbers.add(int(number))
    assert numbers == {1, 2, 3, 4}


def test_every_trial_is_mirrored_in_an_optuna_study(finished):
    import optuna

    study = optuna.load_study(study_name=finished.optuna_study, storage=finished.optuna_storage)
    assert study.metric_names == ["accuracy", "macs_per_sample"]
    by_id = {t.user_attrs["gatesearch.trial_id"]: t for t in study.trials}
    assert len(by_id) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    client = MlflowClient(finished.tracking_uri)
    for row in finished.trials:
        run = client.get_run(row["run_id"])
        t = by_id[run.data.tags["gatesearch.trial_id"]]
        assert t.values == [pytest.approx(run.data.metrics["accuracy"]), pytest.approx(run.data.metrics["macs_per_sample"])]
        assert t.params["gate"] == run.data.params["gate"] and t.params["n_experts"] == int(run.data.params["n_experts"])
        assert ("gamma" in t.params) == (t.params["gate"] in ("dselect_k", "comet"))


def test_front_and_hypervolume_are_logged_during_the_search(finished):
    client = MlflowClient(finished.tracking_uri)
    hist = sorted((m.step, m.value) for m in client.get_metric_history(finished.parent_run_id, "hypervolume"))
    steps = [s for s, _ in hist]
    assert steps[:2] == [2, 4] and set(steps) == {2, 4}  # every 2 finished trials, then the final log (step 4)
    values = [v for _, v in hist]
    assert all(b >= a - 1e-9 for a, b in zip(values, values[1:]))  # fixed reference point: HV never drops
    ref = json.loads(client.get_run(finished.parent_run_id).data.params["reference_point"])
    assert ref == pytest.approx(list(finished.reference_point))


def test_relogging_the_front_is_idempotent(finished):
    tracker = Tracker(finished.tracking_uri, "e2e")
    before = len(tracker.children(finished.parent_run_id))
    _, front, hv, _ = log_front(tracker, finished.parent_run_id, finished.objectives, finished.modes,
                                ref=np.array(finished.reference_point))
    assert len(tracker.children(finished.parent_run_id)) == before == 4
    assert {r["run_id"] for r in front} == {r["run_id"] for r in finished.front}
    assert hv == pytest.approx(finished.hypervolume)
    assert len(tracker.client.search_runs([tracker.experiment_id])) == 5


def test_cli_rejects_a_malformed_space_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPACE.replace("[topk, hash, dselect_k, comet]", "[topk, hashh, dselect_k, comet]"))
    res = CliRunner().invoke(app, ["run", str(bad), "--output-dir", str(tmp_path / "runs")])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "bad.yaml:6" in text and "params.gate.choices.1" in text and "did you mean 'hash'" in text
    assert not (tmp_path / "runs").exists()  # nothing half-written
    cond = tmp_path / "cond.yaml"
    cond.write_text(SPACE.replace("when: {gate: [dselect_k, comet]}", "when: {gate: [dselect, comet]}"))
    res = CliRunner().invoke(app, ["space", "validate", str(cond)])
    assert res.exit_code == 2 and "['dselect']" in res.output  # brackets survive the terminal markup


def test_cli_space_validate_and_sample(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(SPACE)
    res = CliRunner().invoke(app, ["space", "validate", str(f)])
    assert res.exit_code == 0 and "objective moe_digits" in res.output
    res = CliRunner().invoke(app, ["space", "sample", str(f), "-n", "2", "--seed", "3"])
    assert res.exit_code == 0 and res.output.count('"gate"') == 2


def test_cli_pareto_reads_the_same_front_back(finished, tmp_path):
    png = tmp_path / "front.png"
    res = CliRunner().invoke(app, ["pareto", "--tracking-uri", finished.tracking_uri, "--experiment", "e2e",
                                   "--plot", str(png)])
    assert res.exit_code == 0, res.output
    for row in finished.front:
        assert row["trial"] in res.output
    non_front = {r["trial"] for r in finished.trials} - {r["trial"] for r in finished.front}
    assert not any(t in res.output for t in non_front)
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    assert f"/runs/{finished.parent_run_id}" in res.output and "mlflow ui --backend-store-uri" in res.output
    res = CliRunner().invoke(app, ["pareto", "--tracking-uri", finished.tracking_uri, "--experiment", "nope"])
    assert res.exit_code == 2 and "not found" in res.output


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_nevergrad_multi_objective_search_on_ray(ray_session, tmp_path):
    text = SPACE.replace("name: e2e", "name: e2e-ng").replace("searcher: nsga2", "searcher: nevergrad")
    sf = parse_space_file(text, str(tmp_path / "ng.yaml"))
    result = run_search(sf, output_dir=tmp_path / "runs")
    assert len(result.trials) == 4 and result.failed == 0
    client = MlflowClient(result.tracking_uri)
    exp = client.get_experiment_by_name("e2e-ng")
    children = [r for r in client.search_runs([exp.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert len(children) == 4 and all(r.info.status == "FINISHED" for r in children)
    for r in children:  # conditional parameter only where its condition holds; runs log only active params
        assert ("gamma" in r.data.params) == (r.data.params["gate"] in ("dselect_k", "comet"))
    import optuna  # the Nevergrad search is mirrored for optuna-dashboard too

    assert len(optuna.load_study(study_name=result.optuna_study, storage=result.optuna_storage).trials) == 4


def test_moasha_stops_dominated_trials_early_and_keeps_them_off_the_front(ray_session, tmp_path):
    text = (SPACE.replace("name: e2e", "name: e2e-asha")
            .replace("num_samples: 4, max_concurrent: 2, seed: 1",
                     "num_samples: 8, max_concurrent: 2, seed: 1, scheduler: moasha, moasha_eta: 2")
            .replace("epochs: 3", "epochs: 4"))
    result = run_search(parse_space_file(text, str(tmp_path / "asha.yaml")), output_dir=tmp_path / "runs")
    stopped = result.extra["early_stopped"]
    assert stopped >= 1 and result.extra["scheduler_stopped"] == stopped
    assert result.extra["searcher_withheld"] == stopped  # partial results were not told as final
    assert result.extra["searcher_final"] == 8 - stopped
    assert result.extra["epochs_trained"] < 8 * 4
    client = MlflowClient(result.tracking_uri)
    exp = client.get_experiment_by_name("e2e-asha")
    children = [r for r in client.search_runs([exp.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    killed = [r for r in children if r.info.status == "KILLED"]
    assert len(children) == 8 and len(killed) == stopped
    for r in killed:
        at = int(r.data.tags["gatesearch.early_stopped_at_epoch"])
        assert at in (1, 2) and r.data.metrics["epoch"] == at and "pareto_rank" not in r.data.tags
    assert {row["run_id"] for row in result.front} <= {r.info.run_id for r in children if r.info.status == "FINISHED"}


def test_moasha_brackets_and_rung_model_on_ray(ray_session, tmp_path):
    """Hyperband brackets and the rung-model searcher through Ray: every trial is assigned a bracket
    and compared only at its bracket's rungs (records in the rung file), and the searcher's rung
    studies got the results trials reported at rungs (from its checkpoint in the experiment dir)."""
    import glob
    import pickle

    from gatesearch.search.ray.scheduler import RUNGS_FILE

    text = (SPACE.replace("name: e2e", "name: e2e-hb")
            .replace("searcher: nsga2, num_samples: 4, max_concurrent: 2, seed: 1",
                     "searcher: tpe, num_samples: 8, max_concurrent: 2, seed: 1, scheduler: moasha, moasha_eta: 2, "
                     "moasha_brackets: 2, moasha_rung_model: true")
            .replace("epochs: 3", "epochs: 4"))
    result = run_search(parse_space_file(text, str(tmp_path / "hb.yaml")), output_dir=tmp_path / "runs")
    assert result.extra["searcher_final"] + result.extra["early_stopped"] == 8
    assert 0 <= result.extra["rung_model_proposals"] <= 8
    [rungs_file] = glob.glob(str(tmp_path / "runs" / "ray" / "*" / RUNGS_FILE))
    records = json.loads(Path(rungs_file).read_text())
    assigned = records["brackets"]["assigned"]
    assert len(assigned) == 8 and sorted(set(assigned.values())) == [0, 1]
    # rungs at 1 and 2 epochs (grace 1, eta 2, 4 epochs); bracket 1 starts at 2
    assert set(records["1"]) == {t for t, b in assigned.items() if b == 0}
    assert set(records["brackets"]["1"]["2"]) == {t for t, b in assigned.items() if b == 1}
    assert "1" not in records["brackets"]["1"]
    [state] = glob.glob(str(tmp_path / "runs" / "ray" / "*" / "searcher-state-*.pkl"))
    inner = pickle.loads(pickle.loads(Path(state).read_bytes())["inner"])["core"].inner  # restored by replay
    assert type(inner).__name__ == "RungModelCore"
    assert len(inner.rung_studies[1].trials) == 8  # every trial reported epoch 1: added once
    import optuna

    # the rung-2 study holds exactly the epoch-2 rung reports; besides them only FAILs: proposals it
    # made whose trial MO-ASHA stopped at rung 1, before the rung they were sampled for (how many
    # depends on when rung 2 had enough points, i.e. on the order results arrived in)
    at_two = inner.rung_studies[2].trials
    complete = [t for t in at_two if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(records["2"]) + len(records["brackets"]["1"]["2"])
    stopped_at_one = len(records["1"]) - len(records["2"])
    assert all(t.state == optuna.trial.TrialState.FAIL for t in at_two if t not in complete)
    assert len(at_two) - len(complete) <= min(stopped_at_one, inner.asked_from.get(2, 0))


def test_moasha_promotion_pauses_and_resumes_trials_from_their_checkpoints(ray_session, tmp_path):
    """Promotion MO-ASHA on Ray: trials pause at a rung and the promoted resume from their checkpoint
    (every epoch trained once: the epochs trained equal the epochs the children logged, each once);
    the trials never promoted end at their rung, tagged as stopped early; the promotions are in
    the rung file; paused trials do not block new ones (the budget finishes)."""
    import glob

    from gatesearch.search.ray.scheduler import RUNGS_FILE

    text = (SPACE.replace("name: e2e", "name: e2e-promote")
            .replace("searcher: nsga2, num_samples: 4, max_concurrent: 2, seed: 1",
                     "searcher: tpe, num_samples: 10, max_concurrent: 2, seed: 1, scheduler: moasha, moasha_eta: 2, "
                     "moasha_mode: promote")
            .replace("epochs: 3", "epochs: 4"))
    result = run_search(parse_space_file(text, str(tmp_path / "promote.yaml")), output_dir=tmp_path / "runs")
    client = MlflowClient(result.tracking_uri)
    exp = client.get_experiment_by_name("e2e-promote")
    children = [r for r in client.search_runs([exp.experiment_id])
                if r.data.tags.get("mlflow.parentRunId") == result.parent_run_id]
    assert len(children) == 10
    logged = 0
    for r in children:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "epoch")]
        assert steps == list(range(1, len(steps) + 1)), (r.info.run_id, steps)  # each epoch once, in order
        logged += len(steps)
        if r.info.status == "KILLED":  # never promoted: ended at its rung (1 or 2)
            assert int(r.data.tags["gatesearch.early_stopped_at_epoch"]) == len(steps) in (1, 2)
        else:
            assert r.info.status == "FINISHED" and len(steps) == 4
    assert result.extra["epochs_trained"] == logged < 10 * 4
    finished = sum(r.info.status == "FINISHED" for r in children)
    assert 1 <= finished < 10 and result.extra["searcher_final"] == finished
    [rungs_file] = glob.glob(str(tmp_path / "runs" / "ray" / "*" / RUNGS_FILE))
    records = json.loads(Path(rungs_file).read_text())
    assert len(records["1"]) == 10 and records["promoted"]["1"]  # every trial reached rung 1; some promoted
    assert set(records["2"]) == set(records["promoted"]["1"])  # only the promoted went on
    # what each trial reported to Ray: a promoted trial continued after its rung (from its
    # checkpoint; restored, it reports the rung's epoch once more for the scheduler), it did not
    # train from the start again
    for f in glob.glob(str(tmp_path / "runs" / "ray" / "*" / "trial_*" / "result.json")):
        reports = [json.loads(line) for line in Path(f).read_text().splitlines() if line.strip()]
        epochs = [r["epoch"] for r in reports]
        assert epochs == sorted(epochs) and all(epochs.count(e) <= 2 for e in epochs), (f, epochs)
        for i in range(1, len(reports)):
            if epochs[i] == epochs[i - 1]:  # the restored epoch, reported again from its checkpoint
                assert reports[i]["resumed_from_epoch"] == epochs[i], (f, reports[i])
            assert reports[i].get("resumed_from_epoch", 0) <= epochs[i]


THRESHOLD_SPACE = """\
name: thr
objective: threshold_exit_digits
search: {searcher: random, num_samples: 3, max_concurrent: 2, seed: 0}
fixed: {epochs: 2, hidden: 32}
params:
  budget_q: {type: float, low: 0.05, high: 1.95}
  confidence: {type: categorical, choices: [max_softmax, margin]}
"""


def test_one_trial_many_front_points(ray_session, tmp_path):
    """The threshold baseline's budget sweep reaches MLflow: 39 operating points per child and a
    front over all points of all trials on the parent, at least as good as the per-trial front."""
    result = run_search(parse_space_file(THRESHOLD_SPACE, str(tmp_path / "thr.yaml")), output_dir=tmp_path / "runs")
    client = MlflowClient(result.tracking_uri)
    tracker = Tracker(result.tracking_uri, "thr")
    children = tracker.children(result.parent_run_id)
    assert len(children) == 3
    for c in children:
        pts = json.loads(Path(client.download_artifacts(c.run_id, "operating_points.json", str(tmp_path)))
                         .read_text())["operating_points"]
        assert len(pts) == 39
    front = json.loads(Path(client.download_artifacts(result.parent_run_id, "operating_points_front.json",
                                                      str(tmp_path))).read_text())["front"]
    assert front and {p["trial_id"] for p in front} <= {c.trial_id for c in children}
    metrics = client.get_run(result.parent_run_id).data.metrics
    assert metrics["operating_points"] == 3 * 39
    assert metrics["operating_points_hypervolume"] >= metrics["hypervolume"] - 1e-9


def test_a_space_with_only_fixed_values_is_a_search_of_one_trial(ray_session, tmp_path):
    text = "name: fixed-only\nobjective: moe_digits\nsearch: {num_samples: 5}\nfixed: {epochs: 1, gate: hash}\nparams: {}\n"
    result = run_search(parse_space_file(text, str(tmp_path / "fixed.yaml")), output_dir=tmp_path / "runs")
    assert len(result.trials) == 1 and result.failed == 0
    assert result.trials[0]["gate"] == "hash" and len(result.front) == 1
