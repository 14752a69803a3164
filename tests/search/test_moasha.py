"""MO-ASHA rung decisions, crowding distance, and the full-fidelity guard on searchers."""

from pathlib import Path

import numpy as np
import pytest
from ray.tune.search import Searcher

from gatesearch.objectives.metrics import is_partial
from gatesearch.search.front.pareto import crowding_distance
from gatesearch.search.ray.searcher import FullFidelityOnly
from gatesearch.search.schedulers.moasha import CONTINUE, MOASHA, PAUSE


def test_rungs_are_geometric_below_the_budget():
    assert MOASHA(["max", "min"], max_t=9).milestones == [1, 3]
    assert MOASHA(["max", "min"], max_t=30, grace=2, eta=2).milestones == [2, 4, 8, 16]
    with pytest.raises(ValueError):
        MOASHA(["max"], max_t=5, eta=1.0)


def test_dominated_trials_are_stopped_and_front_trials_continue():
    s = MOASHA(["max", "min"], max_t=9, eta=3)
    assert s.decide("a", 1, [0.9, 10.0])  # alone: continues
    assert not s.decide("b", 1, [0.5, 20.0])  # dominated by a, keep ceil(2/3)=1
    assert not s.decide("c", 1, [0.6, 30.0])
    assert s.decide("d", 1, [0.95, 5.0])  # dominates everything
    assert s.decide("a", 2, [0.0, 1e9])  # not a rung: continue, nothing recorded
    assert s.decide("d", 1, [0.0, 1e9])  # already recorded at this rung: continue
    assert set(s.rungs[1]) == {"a", "b", "c", "d"}


def test_ordering_breaks_ties_on_the_front_by_crowding():
    s = MOASHA(["max", "min"], max_t=9)
    front = np.array([[0.5, 1.0], [0.6, 2.0], [0.61, 2.05], [0.9, 9.0], [0.2, 9.5]])
    order = s.order(front)
    assert order[-1] == 4  # the only dominated point is last
    assert set(order[:2]) == {0, 3}  # boundary points of the front (infinite crowding) first
    assert list(order).index(1) > 1 and list(order).index(2) > 1


def test_crowding_distance():
    d = crowding_distance(np.array([[0.0, 4.0], [1.0, 3.0], [2.0, 1.0], [4.0, 0.0]]))
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx(2 / 4 + 3 / 4) and d[2] == pytest.approx(3 / 4 + 3 / 4)


class Recorder(Searcher):
    def __init__(self):
        super().__init__(metric=["accuracy", "macs_per_sample"], mode=["max", "min"])
        self.completed, self.observed = [], []

    def on_trial_result(self, trial_id, result):
        self.observed.append(trial_id)

    def suggest(self, trial_id):
        return {"x": 1}

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completed.append((trial_id, result, error))


def test_partial_results_never_reach_the_searcher_as_final():
    inner = Recorder()
    guard = FullFidelityOnly(inner)
    guard.on_trial_complete("stopped", {"accuracy": 0.9, "macs_per_sample": 5.0, "epoch": 3, "epochs_total": 9})
    full = {"accuracy": 0.8, "macs_per_sample": 7.0, "epoch": 9, "epochs_total": 9}
    guard.on_trial_complete("full", full)
    guard.on_trial_complete("crashed", None, error=True)
    # stopped: no result and no error (Optuna: PRUNED); crashed: an error (FAIL)
    assert inner.completed == [("stopped", None, False), ("full", full, False), ("crashed", None, True)]
    assert guard.withheld == ["stopped"] and guard.final == ["full"]
    # the result it was stopped on is still observed (Ray does not pass it to on_trial_result)
    assert inner.observed == ["stopped"]
    assert is_partial({"epoch": 2, "epochs_total": 5}) and not is_partial({"epoch": 5, "epochs_total": 5})


def test_rung_records_survive_a_restart_of_the_scheduler(tmp_path):
    """Ray restores the scheduler pickled at the start (empty rungs) and never calls its save or
    restore; ours writes its records at every rung and, restored, reloads them from the live
    experiment directory before its first decision."""
    import pickle

    from gatesearch.search.ray.scheduler import RUNGS_FILE, MOASHAScheduler

    class Trial:
        def __init__(self, trial_id):
            self.trial_id = trial_id

    def result(acc, macs, epoch):
        return {"accuracy": acc, "macs_per_sample": macs, "epoch": epoch}

    sched = MOASHAScheduler(MOASHA(modes=["max", "min"], max_t=9, grace=1, eta=3), ["accuracy", "macs_per_sample"])
    sched.load_rungs(str(tmp_path))  # a fit attaches it to the live experiment directory (none there yet)
    pickled_at_start = pickle.dumps(sched)  # what Tuner.restore brings back
    for i, (acc, macs) in enumerate([(0.9, 10.0), (0.5, 20.0), (0.8, 5.0)]):
        sched.on_trial_result(None, Trial(f"t{i}"), result(acc, macs, 1))
    sched.on_trial_result(None, Trial("t0"), result(0.91, 10.0, 2))  # not a rung: nothing new
    assert set(sched.core.rungs[1]) == {"t0", "t1", "t2"} and (tmp_path / RUNGS_FILE).exists()

    from gatesearch.search.ray.live import Live

    restored = pickle.loads(pickled_at_start)
    assert restored.core.rungs[1] == {} and restored.state_dir is None
    Live.experiment_dir = str(tmp_path)  # what a resumed fit sets
    try:
        restored._attach()
    finally:
        Live.experiment_dir = None
    assert restored.state_dir == str(tmp_path)
    assert {t: list(v) for t, v in restored.core.rungs[1].items()} == {t: list(v) for t, v in sched.core.rungs[1].items()}
    # a fourth trial is now ranked against all three earlier ones: dominated by t0 and t2 -> stopped
    assert restored.on_trial_result(None, Trial("t3"), result(0.6, 15.0, 1)) == "STOP"
    assert set(restored.core.rungs[1]) == {"t0", "t1", "t2", "t3"}


def test_a_trial_ending_at_its_rung_is_closed_with_its_rung_report_not_an_older_snapshot():
    """Promotion: a trial that waits at a rung when the search ends is closed with the report it
    made there. After a driver kill Ray restores ``last_result`` from its last experiment snapshot,
    which can be an earlier epoch's (CI: a trial waiting at rung 2 was closed as stopped at epoch 1
    while its epoch 2 was in MLflow); the rung file has the rung's report."""
    from gatesearch.search.ray.scheduler import MOASHAScheduler

    sched = MOASHAScheduler(MOASHA(modes=["max", "min"], max_t=6, grace=1, eta=2, promote=True),
                            ["accuracy", "macs_per_sample"])
    core = sched.core
    assert core.on_result("a", 1, [0.5, 5.0]) == PAUSE
    assert core.on_result("b", 1, [0.9, 1.0], paused=["a"]) == CONTINUE  # promoted on arrival
    assert core.on_result("b", 2, [0.92, 1.0]) == PAUSE and core.paused_at("b") == 2
    stale = {"accuracy": 0.9, "macs_per_sample": 1.0, "epoch": 1, "epochs_total": 6, "config": {"lr": 0.1}}
    closed = sched.closing_result("b", {"lr": 0.1}, stale)
    assert closed["epoch"] == 2 and closed["accuracy"] == pytest.approx(0.92) and closed["epochs_total"] == 6
    assert closed["config"] == {"lr": 0.1} and closed["trial_id"] == "b" and is_partial(closed)
    current = {**stale, "epoch": 2, "accuracy": 0.92, "dropped_fraction": 0.0}
    assert sched.closing_result("b", {"lr": 0.1}, current) is current  # its own rung report, kept whole
    assert sched.closing_result("a", {"lr": 0.2}, {"config": {}})["epoch"] == 1  # restored without a report
    assert sched.closing_result("a", {"lr": 0.2}, None)["accuracy"] == pytest.approx(0.5)


def test_rung_records_live_outside_the_files_ray_copies_on_restore(tmp_path: Path):
    """On restore Ray copies the experiment dir's top-level *.json/*.pkl into its staging dir and
    syncs that stale copy back up later; the rung file must not be one of them. A search started
    with the records at the top level (before they moved) is still read on resume."""
    import json
    import os

    from gatesearch.search.ray.scheduler import RUNGS_FILE, MOASHAScheduler

    assert os.path.dirname(RUNGS_FILE), "the rung file must sit in a subdirectory"
    legacy = tmp_path / os.path.basename(RUNGS_FILE)
    legacy.write_text(json.dumps({"1": {"old": [0.5, 3.0]}}))
    sched = MOASHAScheduler(MOASHA(modes=["max", "min"], max_t=9, grace=1, eta=3), ["accuracy", "macs_per_sample"])
    assert sched.load_rungs(str(tmp_path)) == 1 and list(sched.core.rungs[1]["old"]) == [0.5, 3.0]
    sched.save_rungs()  # from now on, the new place
    assert json.loads((tmp_path / RUNGS_FILE).read_text())["1"] == {"old": [0.5, 3.0]}


def test_optuna_records_stopped_trials_as_pruned_and_crashed_ones_as_failed():
    """Through the product's stack (FullFidelityOnly over Deduplicated over the one searcher
    adapter, CoreSearcher, over the registry's Optuna core):
    a trial MO-ASHA stopped is PRUNED in the study, so TPE counts its configuration among the bad
    ones; the repeats that waited on it are PRUNED too; a crashed trial is FAIL. (With stopped
    trials told as FAIL, TPE + MO-ASHA kept proposing what was stopped again.)"""
    import optuna

    from gatesearch.search.loop.dedup import ConfigKey
    from gatesearch.search.ray.searcher import CoreSearcher, Deduplicated
    from gatesearch.search.searchers.registry import SEARCHERS
    from gatesearch.spaces import Categorical, Space

    def stack():
        inner = CoreSearcher(SEARCHERS["random"].core(Space({"gate": Categorical(("hash",))}),
                                                      ["accuracy", "macs_per_sample"], ["max", "min"], seed=0,
                                                      budget=100, capped=False))
        return inner, FullFidelityOnly(Deduplicated(inner, ConfigKey("moe_digits", {"epochs": 9})))

    S = optuna.trial.TrialState
    inner, guard = stack()
    assert guard.suggest("a") == {"gate": "hash"}
    assert guard.suggest("b") is None  # one configuration, running: every proposal waits on it
    guard.on_trial_complete("a", {"accuracy": 0.5, "macs_per_sample": 3.0, "epoch": 1, "epochs_total": 9})
    states = [t.state for t in inner.core.study.trials]
    assert states == [S.PRUNED] * (1 + Deduplicated.PER_CALL), states
    assert guard.withheld == ["a"] and guard.final == []

    inner, guard = stack()
    guard.suggest("c")
    guard.on_trial_complete("c", None, error=True)
    assert [t.state for t in inner.core.study.trials] == [S.FAIL]
