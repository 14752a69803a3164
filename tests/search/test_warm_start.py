"""Warm start (``gatesearch run --warm-start``): an earlier search's finished trials are told to the
new search's searcher and known to deduplication, without training; trials the new space cannot
produce are skipped with the reason; the new parent run links the old one. Through the CLI and an
interruption + ``resume``: the last test."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.objectives import get_objective
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.lifecycle.warm_start import TAG_FROM, configuration
from gatesearch.search.loop.dedup import ConfigKey
from gatesearch.search.searchers.registry import SEARCHERS
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import parse_space_file
from tests import harness

SPACE = """\
name: NAME
objective: moe_digits
search: {searcher: SEARCHER, num_samples: N, max_concurrent: 1, seed: SEED, front_every: 2}
fixed: {epochs: 1, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: GATES}
  n_experts: {type: int, low: 2, high: HIGH}
"""


def _space(name: str, n: int, high: int = 3, searcher: str = "random", seed: int = 0,
           gates: str = "[hash, softmax, topk]"):
    text = SPACE.replace("NAME", name).replace("SEARCHER", searcher).replace("N,", f"{n},").replace("GATES", gates)
    return parse_space_file(text.replace("SEED", str(seed)).replace("HIGH", str(high)), f"{name}.yaml")


def test_logged_parameters_become_a_configuration_of_the_new_space_or_a_reason():
    space = parse_space_file("""\
objective: moe_digits
fixed: {epochs: 2}
params:
  gate: {type: categorical, choices: [hash, topk]}
  k: {type: int, low: 1, high: 2, when: {gate: [topk]}}
  lr: {type: float, low: 0.001, high: 0.1, log: true}
  noisy: {type: bool, when: {gate: [topk]}}
""", "s.yaml")
    params = {"gate": "topk", "k": "2", "lr": "0.005", "noisy": "True", "epochs": "2", "k_effective": "2"}
    assert configuration(space.space, space.fixed, params) == (
        {"gate": "topk", "k": 2, "lr": 0.005, "noisy": True}, "")
    # a hash trial: k and noisy are inactive, whatever was logged for them
    assert configuration(space.space, space.fixed, {"gate": "hash", "lr": "0.01", "k": "9"})[0] == \
        {"gate": "hash", "lr": 0.01}
    assert configuration(space.space, space.fixed, {**params, "k": "3"}) == (None, "k outside the new bounds")
    assert configuration(space.space, space.fixed, {**params, "gate": "dselect_k"}) == \
        (None, "gate outside the new choices")
    assert configuration(space.space, space.fixed, {**params, "epochs": "4"}) == \
        (None, "epochs was 4, now fixed at 2")
    assert configuration(space.space, space.fixed, {"gate": "topk", "k": "1", "lr": "0.01"}) == \
        (None, "noisy not in the earlier search")
    objective = get_objective("moe_digits")
    assert configuration(space.space, space.fixed, {"gate": "topk", "k": "1", "lr": "0.01"}, objective) == \
        (None, "noisy not in the earlier search")  # active for a top-k trial: the earlier search lacked it
    # an unconditional k that a hash trial never logged (no effect there): any value, the same configuration
    flat = parse_space_file("""\
objective: moe_digits
params:
  gate: {type: categorical, choices: [hash, topk]}
  k: {type: int, low: 1, high: 2}
""", "f.yaml")
    config, why = configuration(flat.space, flat.fixed, {"gate": "hash"}, objective)
    assert why == "" and config == {"gate": "hash", "k": objective.defaults["k"]}


def test_optuna_takes_known_results_as_completed_trials_without_charging_them():
    sf = _space("w", 3)
    core = SEARCHERS["tpe"].core(sf.space, ["accuracy", "macs_per_sample"], ["max", "min"], seed=0, budget=3)
    assert core.tell_known({"gate": "topk", "n_experts": 3}, {"accuracy": 0.9, "macs_per_sample": 1000.0})
    assert not core.tell_known({"gate": "hash", "n_experts": 2}, {"accuracy": float("nan"), "macs_per_sample": 1.0})
    [trial] = core.study.trials
    assert trial.state.name == "COMPLETE" and trial.params == {"gate": "topk", "n_experts": 3}
    assert trial.values == [0.9, 1000.0] and core.asked == 0
    assert all(core.ask(str(i)) is not None for i in range(3))  # the whole budget is still there


def test_nevergrad_takes_known_results_as_candidates_it_did_not_ask_for():
    import random

    from gatesearch.spaces import decode, encode

    sf = parse_space_file("""\
objective: moe_digits
params:
  gate: {type: categorical, choices: [hash, topk, comet]}
  k: {type: int, low: 1, high: 3, when: {gate: [topk, comet]}}
  tree_depth: {type: int, low: 0, high: 3, when: {gate: [comet]}}
  lr: {type: float, low: 0.001, high: 0.1, log: true}
""", "s.yaml")
    core = SEARCHERS["nevergrad"].core(sf.space, ["accuracy", "macs_per_sample"], ["max", "min"], seed=0, budget=4)
    rng = random.Random(0)
    for _ in range(20):  # the parametrization value of a configuration decodes back to it
        cfg = sf.space.sample(rng)
        back = decode(sf.space, encode(sf.space, cfg, core.optimizer.parametrization.value))
        assert back.keys() == cfg.keys() and all(back[k] == pytest.approx(v) if isinstance(v, float) else back[k] == v
                                                 for k, v in cfg.items()), (cfg, back)
        assert core.tell_known(cfg, {"accuracy": rng.random(), "macs_per_sample": rng.random()})
    assert core.told == 20 and core.asked == 0 and core.optimizer.num_tell == 20
    assert all(core.ask(str(i)) is not None for i in range(4))


def _trained_keys(uri: str, experiment: str, parent: str) -> list[str]:
    key = ConfigKey("moe_digits", {"epochs": 1, "expert_hidden": 16, "expert_out": 8})
    objective = get_objective("moe_digits")
    out = []
    for c in Tracker(uri, experiment).children(parent):
        if c.status == "FINISHED":
            cfg = {"gate": c.params["gate"], "n_experts": int(c.params["n_experts"])}
            out.append(key(objective.resolve({**key.fixed, **cfg})))
    return out


@pytest.mark.slow  # over 30 s; `make test-all` and CI (make test-slow) run it
def test_a_warm_started_search_never_trains_what_the_earlier_one_did(ray_session, tmp_path):
    first = run_search(_space("first", 4, seed=1), output_dir=tmp_path / "runs")
    assert len(first.trials) == 4
    # the new space drops n_experts 3 (the earlier trials with 3 experts are skipped, counted) and
    # adds dselect_k: 4 configurations, those of the first search known
    second = run_search(_space("second", 2, high=2, searcher="tpe", gates="[hash, softmax, topk, dselect_k]"),
                        output_dir=tmp_path / "runs", warm_start=first.search_dir)
    n3 = sum(1 for t in first.trials if t["n_experts"] == 3)
    text = second.extra["warm_start"]
    assert f"{4 - n3} finished trials told to the searcher" in text, text
    if n3:
        assert f"{n3} outside the new space skipped ({n3}: n_experts outside the new bounds)" in text, text
    assert second.extra["warm_start_told"] == 4 - n3
    # nothing the first search trained is trained again (the 3 configurations of the new space that
    # it knows are answered from memory), and the new parent links the old one
    old = set(_trained_keys(first.tracking_uri, "first", first.parent_run_id))
    new = _trained_keys(second.tracking_uri, "second", second.parent_run_id)
    assert new and not old & set(new), (old, new)
    run = MlflowClient(second.tracking_uri).get_run(second.parent_run_id)
    assert run.data.tags[TAG_FROM] == first.parent_run_id
    assert run.data.params["warm_start_trials"] == str(4 - n3)


def test_a_bad_warm_start_source_fails_before_anything_is_written(ray_session, tmp_path):
    with pytest.raises(ValueError, match="neither a directory nor an MLflow run id"):
        run_search(_space("x", 1), output_dir=tmp_path / "runs", warm_start="no-such-search")
    with pytest.raises(ValueError, match="no gatesearch search here"):
        run_search(_space("x", 1), output_dir=tmp_path / "runs", warm_start=str(tmp_path))
    with pytest.raises(ValueError, match="there is no tracking store at sqlite:///"):
        run_search(_space("x", 1), output_dir=tmp_path / "runs", warm_start="0" * 32)
    assert not (tmp_path / "runs").exists()
    (tmp_path / "runs").mkdir()
    Tracker(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}", "x")  # a store without that run
    with pytest.raises(ValueError, match=f"run {'0' * 32} not found in sqlite:///"):
        run_search(_space("x", 1), output_dir=tmp_path / "runs", warm_start="0" * 32)


@pytest.mark.slow
def test_warm_start_through_the_cli_and_an_interruption(tmp_path):
    """`gatesearch run --warm-start <dir>`, Ctrl-C after the first new trial, `gatesearch resume`: the
    resumed searcher still knows the earlier trials (none is trained again), the link stays."""
    (tmp_path / "first.yaml").write_text(_space("first", 3, seed=2).text.replace("epochs: 1", "epochs: 3"))
    second = _space("second", 3, searcher="tpe", gates="[hash, softmax, topk, dselect_k]").text
    (tmp_path / "second.yaml").write_text(second.replace("epochs: 1", "epochs: 3"))
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    out = harness.gatesearch_ok("run", "first.yaml", "--output-dir", "out", "--quiet", log=tmp_path / "first.log",
                                marker=marker)
    first_dir = out.split("search dir (for `gatesearch resume`): ", 1)[1].split()[0]
    db = tmp_path / "out" / "mlflow.db"
    key, value = marker.split("=")
    log = tmp_path / "second.log"
    proc = harness.gatesearch("run", "second.yaml", "--output-dir", "out", "--warm-start", first_dir, log=log,
                              **{key: value})
    try:
        harness.wait_for(lambda: harness.finished_children(db) >= 4, 300, "the first new trial", proc, log, every=0.2)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    finally:
        harness.kill_env(marker)
    assert "warm start from search run " in log.read_text() and "3 finished trials told to the searcher" in \
        log.read_text(), log.read_text()[-3000:]
    text = " ".join(harness.gatesearch_ok("resume", "out", log=tmp_path / "resume.log", marker=marker).split())
    assert "hypervolume" in text, text[-2000:]
    uri = f"sqlite:///{db}"
    [(second_parent, params), (first_parent, _)] = Tracker(uri, "second").searches() + Tracker(uri, "first").searches()
    assert params["warm_start_trials"] == "3"
    assert MlflowClient(uri).get_run(second_parent).data.tags[TAG_FROM] == first_parent
    old = set(_trained_keys(uri, "first", first_parent))
    new = _trained_keys(uri, "second", second_parent)
    assert len(new) == 3 and not old & set(new), (old, new)
