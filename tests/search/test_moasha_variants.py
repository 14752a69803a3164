"""MO-ASHA's Hyperband brackets and promotion (search/schedulers/moasha.py) and the rung-model searcher
(search/searchers/rung_model.py): decisions, records through a reload, settings, and the simulator's loop."""

import json
import pickle

import numpy as np
import pytest

from gatesearch.search.config.settings import SearchSettings
from gatesearch.search.schedulers.moasha import CONTINUE, MOASHA, PAUSE, STOP
from gatesearch.search.searchers.registry import SEARCHERS
from gatesearch.spaces import Float, Space

MODES = ["max", "min"]


def test_brackets_start_later_and_take_hyperbands_shares():
    s = MOASHA(MODES, max_t=9, eta=3, brackets=3)
    assert s.bracket_rungs == [[1, 3], [3], []]  # the last bracket runs every trial to the end
    for i in range(17):
        s.bracket(f"t{i}")
    # shares eta^r / (r + 1) = 3 : 1.5 : 1 of 17 trials, assigned deterministically
    assert np.bincount(list(s.assigned.values())).tolist() == [9, 5, 3]
    assert MOASHA(MODES, max_t=9, brackets=10).brackets == 3  # no more brackets than starts


def test_a_trial_is_compared_only_at_its_brackets_rungs_and_brackets_survive_a_reload():
    s = MOASHA(MODES, max_t=9, eta=3, brackets=2)
    s.assigned.update({"a": 0, "b": 1, "c": 1, "d": 1})
    assert s.on_result("b", 1, [0.1, 9.0]) == CONTINUE and "b" not in s.levels[1].get(1, {})
    assert s.on_result("b", 3, [0.9, 1.0]) == CONTINUE  # first at bracket 1's rung 3
    assert s.on_result("c", 3, [0.5, 5.0]) == STOP  # dominated; keep ceil(2/3) = 1
    assert s.on_result("a", 1, [0.2, 2.0]) == CONTINUE and set(s.rungs[1]) == {"a"}  # bracket 0 apart
    again = MOASHA(MODES, max_t=9, eta=3, brackets=2)
    assert again.load(json.loads(json.dumps(s.records()))) == 3
    assert again.assigned == s.assigned and set(again.levels[1][3]) == {"b", "c"}
    assert again.on_result("c", 3, [0.0, 0.0]) == STOP  # decided already (stopped there): stopped again, not recorded twice
    assert not again.decide("d", 3, [0.4, 6.0])
    plain = MOASHA(MODES, max_t=9, eta=3)  # records of a bracketed search, read by a plain one
    assert plain.load(s.records()) == 1 and set(plain.rungs[1]) == {"a"}


def test_a_trial_stopped_at_a_rung_is_stopped_again_when_it_reports_there_again():
    """Stopping mode: a trial Ray restores from a snapshot older than its STOP (a driver kill)
    reports the rung again; it is stopped again, across a reload of the records, and a trial that
    was kept goes on. (It used to continue: a re-report was always CONTINUE.)"""
    s = MOASHA(MODES, max_t=9, eta=3)
    assert s.on_result("a", 1, [0.9, 1.0]) == CONTINUE
    assert s.on_result("b", 1, [0.5, 5.0]) == STOP  # dominated by a: keep ceil(2/3) = 1
    again = MOASHA(MODES, max_t=9, eta=3)
    again.load(json.loads(json.dumps(s.records())))
    assert again.stopped[0][1] == {"b"} and json.loads(json.dumps(s.records()))["stopped"] == {"1": ["b"]}
    assert again.on_result("b", 1, [0.5, 5.0]) == STOP and again.on_result("a", 1, [0.9, 1.0]) == CONTINUE
    assert again.on_result("b", 1, [0.99, 0.1]) == STOP  # decided already: the values reported again do not reopen it


def test_promotion_pauses_at_a_rung_and_resumes_the_top_third():
    s = MOASHA(MODES, max_t=9, eta=3, promote=True)
    assert s.on_result("a", 1, [0.5, 5.0]) == PAUSE  # floor(1/3) = 0: nobody is promoted yet
    assert s.on_result("b", 1, [0.4, 6.0]) == PAUSE
    assert s.paused_at("a") == 1 and s.promotable(["a", "b"], mark=False) is None
    # the third arrival is the best of three: promoted at once, it never pauses
    assert s.on_result("c", 1, [0.9, 1.0], paused=["a", "b"]) == CONTINUE and s.paused_at("c") is None
    assert s.on_result("c", 1, [0.9, 1.0]) == CONTINUE  # a re-report (resumed trial): still promoted
    assert s.on_result("d", 1, [0.8, 2.0], paused=["a", "b"]) == PAUSE  # floor(4/3) = 1: c already
    assert s.promotable(["a", "b", "d"]) is None
    for t, v in (("e", [0.1, 9.0]), ("f", [0.2, 9.0])):
        s.on_result(t, 1, v, paused=["a", "b", "d"])
    # six at rung 1: the top two are c (promoted) and d, which a free worker resumes next, once
    assert s.promotable(["a", "b", "d", "e", "f"]) == "d" and s.promotable(["a", "b", "e", "f"]) is None
    again = MOASHA(MODES, max_t=9, eta=3, promote=True)
    again.load(json.loads(json.dumps(s.records())))
    assert again.promoted[0][1] == {"c", "d"} and again.paused_at("a") == 1 and again.paused_at("d") is None


SPACE = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0)})


def _rung_core(min_points=3, seed=0):
    return SEARCHERS["tpe"].core(SPACE, ["acc", "cost"], MODES, seed=seed, budget=40, fidelities=(1, 3)) \
        if min_points is None else _custom(min_points, seed)


def _custom(min_points, seed):
    from gatesearch.search.searchers.registry import _tpe
    from gatesearch.search.searchers.rung_model import RungModelCore

    return RungModelCore(SPACE, ["acc", "cost"], MODES, [_tpe(seed + i, 40) for i in range(3)], fidelities=(1, 3),
                         min_points=min_points, budget=40)


def _report(core, key, epoch):
    cfg = core.configs[key]
    core.observe(key, {"acc": cfg["x"] * epoch / 9, "cost": cfg["y"], "epoch": epoch})


def test_the_rung_model_learns_from_rungs_then_from_finished_trials():
    import optuna

    core = _custom(3, 0)
    assert type(SEARCHERS["tpe"].core(SPACE, ["a", "b"], MODES, seed=0, budget=9, fidelities=(1,)).inner).__name__ == "RungModelCore"
    for k in ("p1", "p2", "p3"):  # random start: from the full study
        assert core.ask(k) is not None and core.model_fidelity() is None
    for k in ("p1", "p2", "p3"):
        _report(core, k, 1)
        _report(core, k, 1)  # reported twice (a resumed trial): added once
        _report(core, k, 2)  # not a rung
    assert len(core.rung_studies[1].trials) == 3 and len(core.rung_studies[3].trials) == 0
    assert core.model_fidelity() == 1  # three one-epoch results: proposals now come from rung 1's study
    cfg = core.ask("p4")
    assert core.from_rung["p4"][0] == 1 and core.asked_from == {0: 3, 1: 1}
    _report(core, "p4", 1)  # its own trial in rung 1's study is completed, not a second one added
    states = [t.state for t in core.rung_studies[1].trials]
    assert len(states) == 4 and states.count(optuna.trial.TrialState.COMPLETE) == 4
    for k in ("p1", "p2", "p3"):
        _report(core, k, 3)
    assert core.model_fidelity() == 3
    assert core.tell("p1", {"acc": 0.9, "cost": 0.2})
    assert not core.tell("p2", None, stopped=True)  # stopped early: pruned in the full study
    assert core.tell("p4", {"acc": cfg["x"], "cost": cfg["y"]})  # asked from rung 1, final told to the full study
    full = core.study.trials
    assert [t.state for t in full].count(optuna.trial.TrialState.COMPLETE) == 2
    assert optuna.trial.TrialState.PRUNED in [t.state for t in full]
    assert core.tell("p3", {"acc": 0.5, "cost": 0.5}) and core.model_fidelity() is None  # three finished
    again = pickle.loads(pickle.dumps(core))  # saved with the experiment, restored on resume
    assert again.ask("p5") is not None and len(again.study.trials) == 5


def test_rung_model_settings_are_checked():
    ok = SearchSettings(scheduler="moasha", moasha_rung_model=True, moasha_brackets=3)
    assert ok.moasha_rung_model and ok.moasha_brackets == 3
    with pytest.raises(ValueError, match="scheduler: moasha"):
        SearchSettings(moasha_rung_model=True)
    with pytest.raises(ValueError, match="scheduler: moasha"):
        SearchSettings(moasha_brackets=2)
    with pytest.raises(ValueError, match="cannot model rung results"):
        SearchSettings(scheduler="moasha", searcher="nevergrad", moasha_rung_model=True)
    with pytest.raises(ValueError, match="moasha_brackets: must be >= 1"):
        SearchSettings(scheduler="moasha", moasha_brackets=0)
    with pytest.raises(ValueError, match="moasha_rung_model: expected bool"):
        SearchSettings.from_mapping({"scheduler": "moasha", "moasha_rung_model": "yes"})


@pytest.mark.parametrize("moasha", [{"promote": True}, {"brackets": 3}, {"promote": True, "brackets": 2}])
def test_the_simulator_counts_every_epoch_once(moasha):
    """A promoted trial resumes where it paused: the epochs trained equal the epochs its trials
    reached; every configuration ends once (finished, stopped, or paused and never promoted)."""
    from gatesearch.search.loop.simulated import simulate

    reached: dict = {}

    def evaluate(cfg):
        key = (cfg["x"], cfg["y"])

        class Curve:
            def __getitem__(self, i):
                reached[key] = max(reached.get(key, 0), i + 1)
                return [cfg["x"] * (i + 1) / 9, cfg["y"]]
        return Curve()

    tr = simulate(evaluate, SPACE, "tpe", seed=0, trials=40, ref=[0.0, 1.0], epochs=9, moasha=moasha,
                  rung_model=True, metrics=("acc", "cost"))
    assert len(tr.epochs) == 40 and tr.epochs[-1] == sum(reached.values())
    assert 0 < len(tr.finals) < 40 and all(a <= b for a, b in zip(tr.hv, tr.hv[1:]))


def _space(search: str) -> str:
    return (f"name: v\nobjective: moe_digits\nsearch: {{{search}}}\nfixed: {{epochs: 4}}\n"
            "params:\n  gate: {type: categorical, choices: [topk, hash]}\n")


@pytest.mark.parametrize("search, where, message", [
    ("scheduler: moasha, moasha_brackets: 4", ":3:", "at most 3"),  # rungs at 1 and 3 (eta 3, 4 epochs)
    ("scheduler: moasha, moasha_grace: 4", ":3:", "no rung below the full budget of 4 epochs"),
    ("scheduler: moasha, moasha_mode: promot", ":3:", "did you mean 'promote'"),
    ("scheduler: moasha, moasha_rung_model: true, searcher: random", ":3:", "cannot model rung results"),
])
def test_moasha_settings_errors_name_the_line_and_the_fix(tmp_path, search, where, message):
    from gatesearch.search.config.validate import validate_space_file
    from gatesearch.spaces import SpaceError, parse_space_file

    path = tmp_path / "v.yaml"
    path.write_text(_space(search))
    with pytest.raises(SpaceError) as e:
        validate_space_file(parse_space_file(path.read_text(), str(path)))
    assert where in str(e.value) and message in str(e.value), str(e.value)


def test_three_brackets_fit_four_epochs():
    from gatesearch.search.config.validate import validate_space_file
    from gatesearch.spaces import parse_space_file

    validate_space_file(parse_space_file(_space("scheduler: moasha, moasha_brackets: 3, moasha_mode: promote"), "ok.yaml"))
