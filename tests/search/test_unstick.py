"""A sampler that proposes the same configuration again and again (GP and BoTorch fit their model
and optimise the acquisition deterministically: told a repeat's known result, they propose it again)
is unstuck: after ``UNSTICK_AFTER`` repeats in a row, of a finished or a running configuration, the
next proposal is drawn at random among the others. Without it, each repeat cost a model fit and the
search stalled for ``EXHAUSTED_AFTER`` asks (over an hour of BoTorch on NAS-Bench-201), then ended
as if the space were exhausted."""

from __future__ import annotations

import json
import pickle

import optuna
import pytest

from gatesearch.search.loop.dedup import EXHAUSTED_AFTER, ProposalMemory
from gatesearch.search.searchers.registry import SEARCHERS, UNSTICK_AFTER, OptunaCore, optuna_searcher
from gatesearch.spaces import Categorical, Int, Space

SPACE = Space({"x": Int(0, 9), "act": Categorical(("relu", "gelu", "tanh"))})  # 30 configurations
STUCK = {"x": 4, "act": "gelu"}


def _stuck_sampler(seed: int, num_samples: int):
    """A real Optuna sampler that always proposes STUCK (as a deterministic Bayesian one does here)."""
    return optuna.samplers.PartialFixedSampler(STUCK, optuna.samplers.RandomSampler(seed=seed))


def _evaluate(config) -> dict:
    return {"acc": config["x"] / 10 + {"relu": 0.0, "gelu": 0.05, "tanh": 0.02}[config["act"]], "macs": config["x"]}


def _drive(core, trials: int, at_once: int = 2):
    """The shipped deduplication loop (``ProposalMemory.propose``, as the Ray searcher and the
    simulated backend run it) with ``at_once`` trials running; the oldest ends first."""
    memory = ProposalMemory(lambda c: json.dumps(c, sort_keys=True))
    serial = iter(range(1, 1 << 30))
    running, trained, outcome = [], [], "new"

    def end(name: str, config) -> None:
        result = _evaluate(config)
        core.tell(name, result)
        for waiting in memory.end(name, result)[0]:
            core.tell(waiting, result)

    while len(trained) < trials:
        names = [f"p{next(serial)}" for _ in range(64)]  # as many as the Ray searcher asks per call
        got = memory.propose(core.ask, lambda name, result: core.tell(name, result), names)
        outcome = got.outcome
        if outcome == "new":
            memory.start(got.proposal, got.key)
            running.append((got.proposal, got.config))
            trained.append(got.config)
            if len(running) >= at_once:
                end(*running.pop(0))
        elif outcome == "later":  # only repeats this call: a trial ends, then the searcher is asked again
            if running:
                end(*running.pop(0))
        else:  # exhausted, or the searcher's end
            break
    for name, config in running:
        end(name, config)
    return trained, memory.answered, outcome


def _core(unstick_after, seed=0):
    return OptunaCore(SPACE, ["acc", "macs"], ["max", "min"], _stuck_sampler(seed, 20), budget=20, capped=False,
                      unstick_after=unstick_after, seed=seed)


def test_without_unsticking_a_stuck_sampler_ends_the_search_after_one_trial():
    trained, answered, outcome = _drive(_core(None), trials=12)
    assert trained == [STUCK] and outcome == "exhausted" and answered >= EXHAUSTED_AFTER


def test_a_stuck_sampler_is_unstuck_with_random_draws_and_trains_the_whole_budget():
    core = _core(UNSTICK_AFTER)
    trained, answered, _ = _drive(core, trials=12)
    keys = [json.dumps(c, sort_keys=True) for c in trained]
    assert len(trained) == 12 and len(set(keys)) == 12 and trained[0] == STUCK  # every one new
    assert all(SPACE.broken(c) is None and 0 <= c["x"] <= 9 for c in trained)
    # each unstuck proposal came after UNSTICK_AFTER repeats (finished or running), never sooner
    assert core.unstuck == 11 and answered <= UNSTICK_AFTER * 12
    # seeded: the same search again proposes the same; another seed, other draws
    assert _drive(_core(UNSTICK_AFTER), trials=12)[0] == trained
    assert _drive(_core(UNSTICK_AFTER, seed=1), trials=12)[0] != trained
    # the study holds every proposal, so the sampler models the drawn ones like any other
    complete = core.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert {json.dumps(t.params, sort_keys=True) for t in complete} == set(keys)


def test_the_unstuck_searcher_restores_from_its_recorded_calls_to_the_same_proposals():
    """Saved mid-search (RecordedCore: recipe + calls) and restored, it proposes what the original does."""
    SEARCHERS.register("stuck-test", optuna_searcher("stuck-test", "always one configuration", _stuck_sampler,
                                                     unstick_after=UNSTICK_AFTER, rung_model=False))
    try:
        def build():
            return SEARCHERS["stuck-test"].core(SPACE, ["acc", "macs"], ["max", "min"], seed=3, budget=20,
                                                capped=False)

        core = build()
        first, _, _ = _drive(core, trials=5)
        copy = pickle.loads(pickle.dumps(core))
        assert copy.inner.unstuck == core.inner.unstuck and copy.inner.repeats == core.inner.repeats
        assert [copy.ask(f"q{i}") for i in range(6)] == [core.ask(f"q{i}") for i in range(6)]
    finally:
        SEARCHERS.unregister("stuck-test")


@pytest.mark.parametrize("name", ["gp", "botorch"])
def test_the_bayesian_searchers_are_unstuck_and_the_others_not(name):
    """GP and BoTorch propose a repeat again; TPE, NSGA-II and random draw anew on each ask."""
    if SEARCHERS[name].missing():
        pytest.skip(f"{name} needs {SEARCHERS[name].missing()}")
    bayes = SEARCHERS[name].core(SPACE, ["acc", "macs"], ["max", "min"], seed=0, budget=10, capped=False)
    assert bayes.inner.unstick_after == UNSTICK_AFTER
    for other in ("tpe", "nsga2", "random"):
        assert SEARCHERS[other].core(SPACE, ["acc", "macs"], ["max", "min"], seed=0, budget=10,
                                     capped=False).inner.unstick_after is None



def test_the_rung_model_path_is_unstuck_too():
    """With MO-ASHA's rung model (``moasha_rung_model``), proposals come from a rung's study once it
    has enough points; a stuck sampler there is unstuck the same way (before, only the full-fidelity
    study's asks were counted, and this path stalled as the full one had)."""
    SEARCHERS.register("stuck-test", optuna_searcher("stuck-test", "always one configuration", _stuck_sampler,
                                                     unstick_after=UNSTICK_AFTER))
    try:
        core = SEARCHERS["stuck-test"].core(SPACE, ["acc", "macs"], ["max", "min"], seed=0, budget=20,
                                            capped=False, fidelities=(1,)).inner
        assert type(core).__name__ == "RungModelCore" and core.unstick_after == UNSTICK_AFTER
        first = [f"p{i}" for i in range(core.min_points)]
        for key in first:  # the start: all from the full study; each reports at rung 1, then is stopped there
            core.ask(key)
        for key in first:
            core.observe(key, {**_evaluate(core.configs[key]), "epoch": 1})
            assert not core.tell(key, None, stopped=True)
        assert core.min_points == 6 and core.model_fidelity() == 1
        assert core.unstuck == 1  # STUCK, 3 repeats of it running, a draw, STUCK again
        drawn = core.unstuck
        # from rung 1's study now: STUCK trains to the end, then is proposed again and answered (as
        # deduplication does) with its result, UNSTICK_AFTER times ...
        assert core.ask("s0") == STUCK and core.tell("s0", _evaluate(STUCK))
        for i in range(1, UNSTICK_AFTER + 1):
            assert core.ask(f"s{i}") == STUCK and core.from_rung[f"s{i}"][0] == 1
            core.tell(f"s{i}", _evaluate(STUCK))
        assert core.model_fidelity() == 1  # the answered repeats did not fill the full study
        # ... and the next is drawn among the others, asked through rung 1's study, which holds it
        unstuck = core.ask("u")
        assert unstuck != STUCK and core.unstuck == drawn + 1 and core.from_rung["u"][0] == 1
        assert core.from_rung["u"][1].params == unstuck and core.asked_from[1] == UNSTICK_AFTER + 2
        core.tell("u", _evaluate(unstuck))
        assert not core.proposed and json.dumps(unstuck, sort_keys=True) in core.known
    finally:
        SEARCHERS.unregister("stuck-test")


def test_the_simulated_backend_counts_the_unstuck_draws_beside_its_asks():
    """The trace a benchmark reads (``simulate``) says how many proposals were random draws to unstick
    the sampler: here all but the first of 12 trials, each after UNSTICK_AFTER repeats answered from memory."""
    from gatesearch.search.loop.simulated import simulate

    SEARCHERS.register("stuck-test", optuna_searcher("stuck-test", "always one configuration", _stuck_sampler,
                                                     unstick_after=UNSTICK_AFTER, rung_model=False))
    try:
        trace = simulate(lambda c: [[_evaluate(c)["acc"], _evaluate(c)["macs"]]], SPACE, "stuck-test", seed=0,
                         trials=12, ref=[0.0, 10.0], epochs=1, concurrency=1, metrics=("acc", "macs"))
    finally:
        SEARCHERS.unregister("stuck-test")
    assert len(trace.configs) == 12 and trace.configs[0] == STUCK
    assert trace.unstuck == 11 and trace.answered == UNSTICK_AFTER * 11
    assert trace.asks == 12 + trace.answered
    assert simulate(lambda c: [[_evaluate(c)["acc"], _evaluate(c)["macs"]]], SPACE, "random", seed=0, trials=12,
                    ref=[0.0, 10.0], epochs=1, concurrency=1, metrics=("acc", "macs")).unstuck == 0
