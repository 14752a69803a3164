"""Contract over every registered searcher: seeded, budgeted, conditional, inclusive bounds."""

from __future__ import annotations

import math
import os
from pathlib import Path

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
ROOT = Path(__file__).resolve().parents[2]
BUDGET = 24
#: Bayesian searchers fit a model per suggestion (BoTorch: about 3 s each here): a smaller budget
BUDGETS = {"botorch": 5}


def _run(name: str, seed: int) -> list[dict]:
    if name == "botorch":
        import warnings

        from botorch.exceptions.warnings import BadInitialCandidatesWarning

        # this toy objective leaves qLogNEHVI flat at the start; BoTorch then retries its initial
        # conditions whenever it records this warning (five times slower), which is not the contract
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BadInitialCandidatesWarning)
            return _proposals(name, seed)
    return _proposals(name, seed)


def _proposals(name: str, seed: int) -> list[dict]:
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


@pytest.mark.skipif(bool(SEARCHERS["botorch"].missing()), reason="optional extra not installed: botorch")
def test_botorch_never_waits_on_a_kernel_compile_left_unfinished(tmp_path):
    """BoTorch compiles a C++ kernel on first use behind a lock file; a compile cut short (Ctrl-C, a
    kill) leaves the lock, and torch then waits on it forever. CI hung here for 50 minutes."""
    import subprocess
    import sys
    import textwrap

    build = tmp_path / "logei_fused_ext"
    build.mkdir()
    (build / "lock").touch()  # what a killed compile leaves behind
    code = textwrap.dedent("""
        from gatesearch.search.searchers import SEARCHERS
        from tests.search.test_searcher_contract import SPACE
        core = SEARCHERS["botorch"].core(SPACE, ["acc", "cost"], ["max", "min"], seed=0, budget=3, num_workers=1)
        for i in range(3):  # the third is BoTorch's own (two random start-up proposals)
            cfg = core.ask(str(i))
            core.tell(str(i), {"acc": cfg["k"] + cfg.get("w", 0.0), "cost": cfg["lr"]})
        print("proposed", i + 1)
    """)
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("the BoTorch searcher waited on a stale torch_extensions lock (still waiting after 240 s)")
    assert out.returncode == 0 and "proposed 3" in out.stdout, out.stderr[-2000:]
    assert sorted(p.name for p in build.iterdir()) == ["lock"], "no compile was started"
