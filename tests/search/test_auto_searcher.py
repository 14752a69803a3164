"""The default searcher, ``auto``: GP on a flat space, TPE on a conditional or related one (the
choice the public tables and the MoE benchmarks measured; ``registry.auto_searcher``)."""

from __future__ import annotations

import pickle

import optuna

from gatesearch.search.config.settings import SearchSettings
from gatesearch.search.searchers.registry import SEARCHERS, auto_searcher, flat
from gatesearch.spaces import Categorical, Condition, Float, Int, Space
from gatesearch.spaces.relations import Relation

FLAT = Space({"lr": Float(1e-3, 1e-1, log=True), "width": Int(8, 64), "act": Categorical(("relu", "gelu"))})
CONDITIONAL = Space({"gate": Categorical(("topk", "hash")), "k": Int(1, 4, when=(Condition("gate", ("topk",)),)),
                     "lr": Float(1e-3, 1e-1, log=True)})
RELATED = Space({"k": Int(1, 4), "n_experts": Int(2, 8)}, relations=(Relation.parse("k <= n_experts", ("k", "n_experts")),))


def _sampler(space, **kw):
    return SEARCHERS["auto"].core(space, ["acc", "cost"], ["max", "min"], seed=0, budget=12, **kw).inner.study.sampler


def test_auto_is_the_default_and_picks_by_the_space_shape():
    assert SearchSettings().searcher == "auto" and list(SEARCHERS)[0] == "auto"
    assert flat(FLAT) and not flat(CONDITIONAL) and not flat(RELATED)
    assert [auto_searcher(s) for s in (FLAT, CONDITIONAL, RELATED)] == ["gp", "tpe", "tpe"]
    assert isinstance(_sampler(FLAT), optuna.samplers.GPSampler)
    assert isinstance(_sampler(CONDITIONAL), optuna.samplers.TPESampler)
    assert isinstance(_sampler(RELATED), optuna.samplers.TPESampler)
    # the chosen searcher's own settings come with it: GP is unstuck, TPE is not
    assert SEARCHERS["auto"].core(FLAT, ["a", "b"], ["max", "min"], seed=0, budget=12).inner.unstick_after == 3
    assert SEARCHERS["auto"].core(CONDITIONAL, ["a", "b"], ["max", "min"], seed=0, budget=12).inner.unstick_after is None


def test_auto_proposes_what_the_chosen_searcher_proposes_and_restores():
    for space, chosen in ((FLAT, "gp"), (CONDITIONAL, "tpe")):
        auto = SEARCHERS["auto"].core(space, ["acc", "cost"], ["max", "min"], seed=3, budget=12)
        same = SEARCHERS[chosen].core(space, ["acc", "cost"], ["max", "min"], seed=3, budget=12)
        for i in range(8):
            a, b = auto.ask(f"t{i}"), same.ask(f"t{i}")
            assert a == b
            result = {"acc": float(i % 3) / 3, "cost": float(i)}
            auto.tell(f"t{i}", result), same.tell(f"t{i}", result)
        copy = pickle.loads(pickle.dumps(auto))  # saved as "auto" + its calls; the rule picks the same again
        assert [copy.ask(f"n{i}") for i in range(2)] == [auto.ask(f"n{i}") for i in range(2)]


def test_auto_with_the_rung_model_and_constraints():
    from gatesearch.search.config.constraints import Bound, Constraints

    assert SEARCHERS["auto"].rung_model and SEARCHERS["auto"].constrained
    core = SEARCHERS["auto"].core(FLAT, ["acc", "cost"], ["max", "min"], seed=0, budget=12, fidelities=(1, 3)).inner
    assert type(core).__name__ == "RungModelCore" and isinstance(core.study.sampler, optuna.samplers.GPSampler)
    assert core.unstick_after == 3 and all(isinstance(s.sampler, optuna.samplers.GPSampler)
                                           for s in core.rung_studies.values())
    assert SearchSettings(scheduler="moasha", moasha_rung_model=True).searcher == "auto"
    cap = Constraints((Bound("cost", high=5.0),))
    constrained = SEARCHERS["auto"].core(FLAT, ["acc", "cost"], ["max", "min"], seed=0, budget=12, constraints=cap)
    assert constrained.inner.constraints == cap
