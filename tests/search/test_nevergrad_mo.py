"""Multi-objective Nevergrad searcher: conditionals, inclusive bounds, seeds, tells."""

import warnings

import pytest

from gatesearch.search.searchers.nevergrad_mo import NevergradMO
from gatesearch.spaces import parse_space_file

SPACE = parse_space_file("""\
objective: moe_digits
params:
  gate: {type: categorical, choices: [topk, comet, hash]}
  n_experts: {type: int, low: 4, high: 6}
  gamma: {type: float, low: 0.01, high: 10, log: true, when: {gate: [comet]}}
  local_search: {type: bool, when: {gate: [topk, comet]}}
  ls_budget_epochs: {type: float, low: 0.5, high: 2.0, when: {local_search: [true]}}
  epochs: 3
""", "ng.yaml").space


def fake_result(cfg):
    acc = 0.5 + 0.1 * cfg["n_experts"] / 6 + (0.2 if cfg["gate"] == "comet" else 0.0)
    return {"accuracy": acc, "macs_per_sample": 1000.0 * cfg["n_experts"] + (500 if cfg.get("local_search") else 0)}


def run(seed, optimizer="NGOpt", n=40):
    ng = NevergradMO(SPACE, ["accuracy", "macs_per_sample"], ["max", "min"], optimizer=optimizer, budget=n,
                     num_workers=2, seed=seed)
    cfgs = []
    for i in range(n):
        cfg = ng.ask(str(i))
        cfgs.append(cfg)
        assert ng.tell(str(i), fake_result(cfg))
    assert ng.ask("extra") is None  # budget respected
    return ng, cfgs


def test_conditionals_and_inclusive_bounds():
    _, cfgs = run(0, optimizer="RandomSearch", n=120)
    for c in cfgs:
        assert ("gamma" in c) == (c["gate"] == "comet")
        assert ("local_search" in c) == (c["gate"] in ("topk", "comet"))
        assert ("ls_budget_epochs" in c) == bool(c.get("local_search"))
        assert c["epochs"] == 3 and 0.01 <= c.get("gamma", 1.0) <= 10
    assert {c["n_experts"] for c in cfgs} == {4, 5, 6}
    assert {c["gate"] for c in cfgs} == {"topk", "comet", "hash"}


@pytest.mark.parametrize("optimizer", ["NGOpt", "DE", "RandomSearch"])
def test_same_seed_same_proposals(optimizer):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning noise leaks from the tells
        a = run(7, optimizer)[1]
    b = run(7, optimizer)[1]
    assert a == b
    assert a != run(8, optimizer)[1]


def test_failed_trials_are_not_told_and_front_is_kept():
    ng = NevergradMO(SPACE, ["accuracy", "macs_per_sample"], ["max", "min"], budget=10, num_workers=1, seed=0)
    cfg = ng.ask("a")
    assert not ng.tell("a", None)  # errored trial
    cfg = ng.ask("b")
    assert not ng.tell("b", {"accuracy": float("nan"), "macs_per_sample": 1.0})
    cfg = ng.ask("c")
    assert ng.tell("c", fake_result(cfg)) and ng.told == 1
    assert ng.pareto_front() and set(ng.pareto_front()[0]) >= {"gate", "n_experts"}


def test_unknown_optimizer_is_a_clear_error():
    with pytest.raises(ValueError, match=r"nevergrad_optimizer: unknown 'NGopt' \(did you mean 'NGOpt'\?\)"):
        NevergradMO(SPACE, ["accuracy"], ["max"], optimizer="NGopt", budget=3, num_workers=1)
