"""Outcome constraints (``constraints:`` in a space file): checked against the objective's metrics
at their line; told to the searchers that model them; an infeasible trial finishes and is logged
but stays off the front, out of the hypervolume, shaded in the figures, counted in the progress
display and the run description, and after every feasible trial at an MO-ASHA rung. Through
``resume``: ``tests/reliability/test_interrupt.py``, first chain."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from gatesearch.objectives import get_objective
from gatesearch.search.config.constraints import MISSING, TAG_INFEASIBLE, Bound, Constraints
from gatesearch.search.config.validate import validate_space_file
from gatesearch.search.front.live import LiveFront
from gatesearch.search.front.pareto import hypervolume
from gatesearch.search.front.report import read_front
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.schedulers.moasha import MOASHA
from gatesearch.search.searchers.registry import SEARCHERS
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.search.ui.progress import SearchProgress
from gatesearch.spaces import Float, Space, SpaceError, parse_space_file

SPACE = """\
name: capped
objective: moe_digits
search: {searcher: random, num_samples: 6, max_concurrent: 2, seed: 1, front_every: 2}
constraints: CONSTRAINTS
fixed: {epochs: 1, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: [hash, softmax, topk]}
  n_experts: {type: int, low: 2, high: 8}
"""


def _space(constraints: str):
    return parse_space_file(SPACE.replace("CONSTRAINTS", constraints), "space.yaml")


@pytest.mark.parametrize("constraints, field, words", [
    ("{macs_per_sampel: {max: 2000}}", "constraints.macs_per_sampel",
     ["macs_per_sampel is not a metric moe_digits reports", "did you mean 'macs_per_sample'"]),
    ("{dropped_fraction: {max: 0.05}}", "constraints.dropped_fraction",
     ["dropped_fraction is not a metric moe_digits reports", "bound one of"]),
    ("{macs_per_sample: {maximum: 2000}}", "constraints.macs_per_sample.maximum",
     ["unknown bound 'maximum'", "did you mean 'max'"]),
    ("{macs_per_sample: {max: lots}}", "constraints.macs_per_sample.max", ["max must be a finite number"]),
    ("{accuracy: {min: 0.9, max: 0.5}}", "constraints.accuracy", ["min 0.9 > max 0.5: no value is feasible"]),
    ("{macs_per_sample: 2000}", "constraints.macs_per_sample", ["expected {min: <value>} and/or {max: <value>}"]),
    ("[macs_per_sample]", "constraints", ["expected a mapping metric -> {min: ..., max: ...}"]),
])
def test_a_bad_constraint_is_an_error_at_its_line(constraints, field, words):
    with pytest.raises(SpaceError) as info:
        validate_space_file(_space(constraints))
    assert info.value.line == 4 and info.value.field == field, str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_every_reported_metric_may_be_bounded():
    # not only the objectives: any metric the objective reports (here the MoE's experts per sample)
    validate_space_file(_space("{active_experts: {max: 2}, test_accuracy: {min: 0.5}, accuracy: {min: 0.1}}"))
    # a plain training function's metrics are not known in advance: a new name is accepted, a near
    # miss of a known one is still caught
    from gatesearch.search.config.constraints import known_metrics
    names, _, strict = known_metrics(get_objective("moe_lm_shakespeare"))
    assert strict and "dropped_fraction" in names and "macs_per_token" in names
    names, prefixes, _ = known_metrics(get_objective("early_exit_digits"))
    assert "ece" in names and prefixes == ["exit_fraction_"]


def test_violations_are_relative_to_the_bound_and_say_why():
    c = Constraints((Bound("macs_per_sample", high=20000.0), Bound("accuracy", low=0.8)))
    assert c.violations({"macs_per_sample": 25000, "accuracy": 0.9}) == pytest.approx([0.25, -0.125])
    assert c.feasible({"macs_per_sample": 20000, "accuracy": 0.8})  # on the bound: feasible
    assert not c.feasible({"macs_per_sample": 19000, "accuracy": 0.79})
    assert c.why({"macs_per_sample": 25100, "accuracy": 0.5}) == \
        "macs_per_sample 25,100 > max 20,000; accuracy 0.5 < min 0.8"
    assert c.violations({"accuracy": float("nan")}) == [MISSING, MISSING]
    assert c.why({"accuracy": 0.9}) == "macs_per_sample not reported"
    assert Constraints.from_mapping(json.loads(c.to_json())) == c
    # the feasible region's edge on an objective: the hypervolume box's edge for it
    assert c.edge("macs_per_sample", "min") == 20000.0 and c.edge("accuracy", "max") == 0.8
    assert c.edge("accuracy", "min") is None and c.edge("val_loss", "min") is None
    assert c.describe() == "macs_per_sample <= 20,000, accuracy >= 0.8"


def test_an_infeasible_trial_is_never_on_the_front_and_ranks_after_every_feasible_one():
    front = LiveFront(("accuracy", "macs"), ("max", "min"))
    assert front.add("a", "ra", {"accuracy": 0.8, "macs": 100}, {})
    # dominates "a", but infeasible: not on the front, and "a" stays
    assert not front.add("b", "rb", {"accuracy": 0.9, "macs": 50}, {}, infeasible="macs 50 > max 40")
    assert front.add("c", "rc", {"accuracy": 0.7, "macs": 30}, {})
    assert [r["run_id"] for r in front.front_rows()] == ["rc", "ra"]
    assert front.ranks().tolist() == [0, 1, 0]
    assert front.rows()[1]["infeasible"] == "macs 50 > max 40" and front.infeasible_count() == 1
    assert front.hypervolume([0.0, 200.0]) == pytest.approx(
        hypervolume(np.array([[0.8, 100], [0.7, 30]]), ("max", "min"), [0.0, 200.0]))
    # re-adding (resume) keeps the rule
    front.add("b", "rb", {"accuracy": 0.9, "macs": 50}, {}, infeasible="macs 50 > max 40")
    assert [r["run_id"] for r in front.front_rows()] == ["rc", "ra"]


def test_moasha_puts_feasible_trials_first_at_a_rung_and_keeps_it_through_a_reload():
    sched = MOASHA(modes=["max", "min"], max_t=9, grace=1, eta=3)  # keep the top ceil(m / 3)
    assert sched.decide("t1", 1, [0.9, 50.0], feasible=False)  # alone at the rung: continues
    assert sched.decide("t2", 1, [0.5, 100.0], feasible=True)  # dominated, but the only feasible one
    assert not sched.decide("t3", 1, [0.95, 40.0], feasible=False)  # best values, infeasible: stopped
    values = np.array([[0.9, 50.0], [0.5, 100.0], [0.95, 40.0]])
    assert sched.order(values, np.array([False, True, False])).tolist()[0] == 1
    records = json.loads(json.dumps(sched.records()))
    again = MOASHA(modes=["max", "min"], max_t=9, grace=1, eta=3)
    assert again.load(records) == 3 and again.infeasible[1] == {"t1", "t3"}
    assert not again.decide("t4", 1, [0.3, 500.0], feasible=False)  # 4 recorded, top 2: t2, t3


SPACE_XY = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})
CAP = Constraints((Bound("cost", high=0.3),))


def _infeasible_share(searcher: str, constraints, seeds=range(4), n=30) -> float:
    bad = 0
    for seed in seeds:
        core = SEARCHERS[searcher].core(SPACE_XY, ["acc", "cost"], ["max", "min"], seed=seed, budget=n,
                                        constraints=constraints)
        for i in range(n):
            c = core.ask(str(i))
            result = {"acc": 0.7 * c["x"] + 0.3 * c["y"], "cost": c["x"]}  # accuracy is bought with cost
            bad += result["cost"] > 0.3
            core.tell(str(i), result)
        pickle.loads(pickle.dumps(core))  # saved with the experiment (resume)
    return bad / (len(seeds) * n)


def test_tpe_told_the_constraints_spends_fewer_trials_outside_them():
    plain, constrained = _infeasible_share("tpe", None), _infeasible_share("tpe", CAP)
    assert constrained < 0.75 * plain, (plain, constrained)


def test_a_trial_stopped_early_is_told_with_the_violations_of_its_last_report():
    core = SEARCHERS["tpe"].core(SPACE_XY, ["acc", "cost"], ["max", "min"], seed=0, budget=4, constraints=CAP)
    core.ask("a")
    core.observe("a", {"acc": 0.4, "cost": 0.6})
    core.tell("a", None, stopped=True)
    [trial] = core.study.trials
    assert trial.state.name == "PRUNED" and trial.constraints == pytest.approx({"cost": 1.0})


def test_the_searchers_that_model_constraints_say_so():
    assert {n for n, s in SEARCHERS.items() if s.constrained} >= {"tpe", "nsga2", "gp", "nevergrad", "botorch"}
    assert not SEARCHERS["random"].constrained  # its proposals never depend on results
    # Nevergrad is told the violations (its tell takes them) and still pickles
    assert 0 <= _infeasible_share("nevergrad", CAP, seeds=[0], n=12) <= 1


def test_the_progress_display_counts_infeasible_trials():
    objective = get_objective("moe_digits")
    out = io.StringIO()
    shown = SearchProgress(objective, 2, live=False, stream=out,
                           constraints=Constraints((Bound("macs_per_sample", high=1000.0),)))
    with shown:
        shown.on_complete("t1", {"accuracy": 0.9, "macs_per_sample": 5000.0, "epoch": 1, "epochs_total": 1})
        shown.on_complete("t2", {"accuracy": 0.5, "macs_per_sample": 500.0, "epoch": 1, "epochs_total": 1})
    text = out.getvalue()
    assert "(infeasible: macs_per_sample 5,000 > max 1,000)" in text and "1 infeasible" in text
    assert len(shown.front.front_rows()) == 1


def test_a_constrained_search_keeps_infeasible_trials_off_the_front(ray_session, tmp_path):
    sf = _space("{active_experts: {max: 1.5}}")  # hash/top-1 run one expert, softmax all of them
    result = run_search(sf, output_dir=tmp_path / "runs")
    infeasible = [t for t in result.trials if t.get("infeasible")]
    feasible = [t for t in result.trials if not t.get("infeasible")]
    assert infeasible and feasible, result.trials
    for t in result.trials:
        assert bool(t.get("infeasible")) == (t["active_experts"] > 1.5), t
    assert {r["run_id"] for r in result.front} <= {t["run_id"] for t in feasible}
    assert result.extra["infeasible"] == len(infeasible)
    values = np.array([[t["accuracy"], t["macs_per_sample"]] for t in feasible])
    assert result.hypervolume == pytest.approx(hypervolume(values, ("max", "min"), result.reference_point))
    # the store: the tag says why, the parent records the constraints, the artifacts agree
    client = MlflowClient(result.tracking_uri)
    tracker = Tracker(result.tracking_uri, "capped")
    for child in tracker.children(result.parent_run_id):
        bad = child.metrics["active_experts"] > 1.5
        assert (TAG_INFEASIBLE in child.tags) == bad, child.tags
        if bad:
            assert child.tags[TAG_INFEASIBLE].startswith("active_experts ") and "> max 1.5" in child.tags[TAG_INFEASIBLE]
    parent = client.get_run(result.parent_run_id)
    assert json.loads(parent.data.params["constraints"]) == {"active_experts": {"max": 1.5}}
    assert f"{len(infeasible)} infeasible, kept off the front" in parent.data.tags["mlflow.note.content"]
    art = client.download_artifacts(result.parent_run_id, "pareto_front.json", str(tmp_path))
    assert {r["run_id"] for r in json.load(open(art))["front"]} == {r["run_id"] for r in result.front}
    html = open(client.download_artifacts(result.parent_run_id, "pareto_front.html", str(tmp_path))).read()
    assert '"name":"infeasible"' in html
    # `gatesearch pareto` recomputes the same front from the store (the tags)
    _, _, _, _, front_rows = read_front(tracker, result.parent_run_id, result.objectives, result.modes)
    assert {r["run_id"] for r in front_rows} == {r["run_id"] for r in result.front}
