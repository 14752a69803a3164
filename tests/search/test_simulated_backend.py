"""The simulated backend (search/loop/simulated.py) is the composition the benchmarks measure: its
traces are pinned seed by seed, so a refactor of the loop (or of a rule it shares with the Ray
backend: the full-fidelity rule, warm start, the scheduler's decision) that changes a benchmark number
fails here. The values were recorded before the loop moved from bench/simulation.py into the package
(#31) and are unchanged by the move. They hold for the locked library versions: a new Optuna or
Nevergrad that samples differently changes them (``make test-latest`` does not run this file)."""

from __future__ import annotations

import pytest

from gatesearch.search.loop.composition import ending, warm_start
from gatesearch.search.loop.dedup import ProposalMemory
from gatesearch.search.loop.simulated import simulate
from gatesearch.spaces import Float, Int, Space

SPACE = Space({"x": Float(0.0, 1.0), "y": Float(0.0, 1.0), "n": Int(1, 4)})


def _evaluate(cfg):
    return [[cfg["x"] * (i + 1) / 9 + 0.01 * cfg["n"], cfg["y"] + 0.1 * cfg["n"]] for i in range(9)]


@pytest.mark.parametrize("searcher, kw, seed, hv, epochs", [
    ("random", {}, 0, 1.1027358435262822, 270),
    ("tpe", {"moasha": True}, 1, 1.2741015221539953, 156),
    ("tpe", {"moasha": {"promote": True, "brackets": 3}, "rung_model": True}, 2, 1.1467147388165448, 134),
    ("nsga2", {"dedup": False}, 0, 0.7101424846735056, 270),
    ("nevergrad", {}, 1, 1.0528640480858091, 270),
])
def test_simulated_searches_are_the_recorded_ones_seed_by_seed(searcher, kw, seed, hv, epochs):
    tr = simulate(_evaluate, SPACE, searcher, seed=seed, trials=30, ref=[0.0, 1.5], epochs=9,
                  metrics=("acc", "cost"), **kw)
    assert len(tr.hv) == 30 and tr.hv[-1] == pytest.approx(hv, rel=1e-12) and tr.epochs[-1] == epochs
    assert all(a <= b for a, b in zip(tr.hv, tr.hv[1:]))  # the front only grows


def test_a_warm_started_simulation_is_the_recorded_one():
    warm = [({"x": 0.5, "y": 0.5, "n": 2}, {"acc": 0.5, "cost": 0.7})]
    tr = simulate(_evaluate, SPACE, "tpe", seed=0, trials=20, ref=[0.0, 1.5], epochs=9, metrics=("acc", "cost"),
                  warm=warm)
    assert tr.hv[-1] == pytest.approx(1.358387734997143, rel=1e-12) and tr.epochs[-1] == 180


def test_the_full_fidelity_rule():
    full = {"acc": 0.9, "epoch": 9, "epochs_total": 9}
    partial = {"acc": 0.5, "epoch": 3, "epochs_total": 9}
    assert ending(full).result == full and not ending(full).stopped
    assert ending(partial).result is None and ending(partial).stopped and ending(partial).partial == partial
    assert ending(None).stopped and ending(None).result is None  # ended while paused at a rung
    assert ending(full, error=True).result is None and not ending(full, error=True).stopped  # FAIL, not PRUNED


def test_warm_start_tells_the_core_and_the_memory_numbers_only():
    told = []

    class Core:
        def tell_known(self, config, result):
            told.append((dict(config), dict(result)))
            return True

    memory = ProposalMemory(lambda c: str(sorted(c.items())))
    n = warm_start(Core(), memory, [({"x": 1}, {"acc": 0.5, "note": "text"})])
    assert n == 1 and told == [({"x": 1}, {"acc": 0.5, "note": "text"})]
    assert memory.finished[memory.key({"x": 1})] == {"acc": 0.5}
    assert warm_start(object(), None, [({"x": 2}, {"acc": 0.1})]) == 0  # a core without tell_known
