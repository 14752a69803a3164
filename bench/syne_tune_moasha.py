"""Syne Tune's own MOASHA (PyPI ``syne-tune``, a benchmark-only extra) behind the interface
``search/loop/simulated.py`` drives our :class:`gatesearch.search.schedulers.moasha.MOASHA` through, so the two
schedulers make their decisions on the same stored evaluations, seeds and budget.

Only the scheduler is Syne Tune's: its ``suggest`` samples a flat config space, which cannot
express our conditional MoE space (``k`` only for Top-k gates, the tree depth only for COMET, ...),
so configurations come from the same searcher as the row it is compared with (random sampling, as
in the MO-ASHA paper). Syne Tune minimises every metric: maximised objectives are negated. Its
brackets are drawn with numpy's global generator, seeded here per search.

    pip install --no-deps syne-tune==0.16.0 dill sortedcontainers   # (make bench-extras)
"""

from __future__ import annotations

import datetime as _dt
from typing import Iterable, Sequence

import numpy as np

from gatesearch.search.schedulers.moasha import CONTINUE, STOP


def stops_a_dominating_trial() -> bool:
    """Syne Tune 0.16's check, printed with the benchmark: its ``Bracket.on_result`` takes the
    output of ``NonDominatedPriority`` (``nondominated_sort``: item *indices* in priority order)
    as per-item priorities, so the rank it computes for the new trial is that of whichever index
    is sorted last. Four trials at a rung, then a fifth that dominates them all: it is stopped."""
    s = SyneTuneMOASHA(["min", "min"], 9)
    for t, v in (("a", [1, 1]), ("b", [2, 2]), ("c", [3, 3]), ("d", [4, 4])):
        s.on_result(t, 1, v)
    return s.on_result("e", 1, [0, 0]) == STOP


def _rank_priority():
    from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import NonDominatedPriority

    class RankPriority(NonDominatedPriority):
        """Syne Tune's order turned into per-item priorities (position in the order)."""

        def priority_unsafe(self, objectives):
            order = np.asarray(super().priority_unsafe(objectives))
            ranks = np.empty(len(order), dtype=int)
            ranks[order] = np.arange(len(order))
            return ranks

    return RankPriority()


class SyneTuneMOASHA:
    """``on_result``/``promotable``/``milestones`` over ``syne_tune``'s ``MOASHA`` (stopping)."""

    def __init__(self, modes: Sequence[str], max_t: int, *, grace: int = 1, eta: float = 3.0, brackets: int = 1,
                 seed: int = 0, ranks_fixed: bool = False):
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

        np.random.seed(seed)
        # ranks_fixed: its order turned into ranks (see stops_a_dominating_trial), a second anchor row
        priority = _rank_priority() if ranks_fixed else None
        self.modes = list(modes)
        self.names = [f"objective{i}" for i in range(len(modes))]
        self.inner = MOASHA(config_space={}, metrics=self.names, do_minimize=True, time_attr="epoch", max_t=max_t,
                            grace_period=grace, reduction_factor=eta, brackets=brackets, random_seed=seed,
                            multiobjective_priority=priority)
        self.milestones = sorted({int(m) for m, _ in self.inner.brackets[0].rungs if m < max_t})
        self.trials: dict[str, object] = {}

    def on_result(self, trial_id: str, epoch: int, values: Sequence[float], feasible: bool = True,
                  paused: Iterable[str] = ()) -> str:
        from syne_tune.backend.trial_status import Trial

        trial = self.trials.get(trial_id)
        if trial is None:
            trial = self.trials[trial_id] = Trial(trial_id=len(self.trials), config={}, creation_time=_dt.datetime.now())
            self.inner.on_trial_add(trial)
        result = {"epoch": epoch, **{n: (-v if m == "max" else v) for n, m, v in zip(self.names, self.modes, values)}}
        decision = self.inner.on_trial_result(trial, result)
        return STOP if decision == "STOP" or str(decision).upper().endswith("STOP") else CONTINUE

    def promotable(self, paused: Iterable[str], mark: bool = True) -> None:
        return None  # stopping only
