"""Contract over every registered searcher: seeded, budgeted, conditional, inclusive bounds."""

from __future__ import annotations

import math

import pytest

from gatesearch.search.searchers import SEARCHERS, SearcherSpec, register_searcher
from gatesearch.search.settings import SearchSettings
from gatesearch.spaces import Categorical, Condition, Float, Int, Space

SPACE = Space({
    "gate": Categorical(("a", "b")),
    "k": Int(1, 2),
    "w": Float(0.25, 0.5, when=(Condition("gate", ("b",)),)),
    "lr": Float(1e-3, 1e-1, log=True),
})
BUDGET = 24
#: Bayesian searchers fit a model per suggestion (BoTorch: about a second each): a smaller budget
BUDGETS = {"botorch": 5}


def _run(name: str, seed: int) -> list[dict]:
    budget = BUDGETS.get(name, BUDGET)
    core = SEARCHERS[name].core(SPACE, ["acc", "cost"], ["max", "min"], seed=seed, budget=budget, num_workers=1)
    out = []
    for i in range(budget):
        cfg = core.ask(str(i))
        assert cfg is not None, f"{name} stopped before its budget at trial {i}"
        out.append(cfg)
        core.tell(str(i), {"acc": cfg["k"] + cfg.get("w", 0.0), "cost": cfg["lr"]})
    assert core.ask("over") is None  # the budget is a budget
    return out


def _installed(name: str):
    missing = SEARCHERS[name].missing()
    return pytest.param(name, marks=pytest.mark.skipif(bool(missing), reason=f"optional extra not installed: {missing}"))


@pytest.mark.parametrize("name", [_installed(n) for n in SEARCHERS])
def test_searcher_contract(name):
    a = _run(name, seed=0)
    assert a == _run(name, seed=0), "same seed, same proposals"
    assert a != _run(name, seed=1), "another seed, other proposals"
    for cfg in a:
        assert ("w" in cfg) == (cfg["gate"] == "b"), cfg  # conditional: only where its condition holds
        assert cfg["k"] in (1, 2) and isinstance(cfg["k"], int)
        assert 1e-3 <= cfg["lr"] <= 1e-1 and math.isfinite(cfg["lr"])
        if "w" in cfg:
            assert 0.25 <= cfg["w"] <= 0.5
    assert {c["k"] for c in a} == {1, 2}  # both inclusive integer bounds are proposed
    assert {c["gate"] for c in a} == {"a", "b"}


def test_failed_trials_are_told_as_failures():
    for name, spec in SEARCHERS.items():
        if spec.missing():
            continue
        core = spec.core(SPACE, ["acc", "cost"], ["max", "min"], seed=0, budget=4, num_workers=1)
        core.ask("0")
        assert core.tell("0", None) is False and core.tell("0", {"acc": 1.0, "cost": 1.0}) is False, name


def test_registry_rejects_duplicates_and_settings_read_it():
    with pytest.raises(ValueError, match="already registered"):
        register_searcher(SearcherSpec("tpe", "again"))
    with pytest.raises(ValueError, match="did you mean 'nsga2'"):
        SearchSettings(searcher="nsga")
    for name in SEARCHERS:
        assert SearchSettings(searcher=name).searcher == name


def test_an_optional_searcher_without_its_extra_is_refused_with_the_install_command(monkeypatch):
    import importlib.util
    import sys

    monkeypatch.delitem(sys.modules, "botorch", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == "botorch" else real(m, *a))
    with pytest.raises(ValueError, match=r"searcher: 'botorch' needs botorch.*pip install 'gatesearch\[botorch\]'"):
        SearchSettings(searcher="botorch")
