"""Multi-objective asynchronous successive halving (MO-ASHA; Schmucker et al. 2021,
Syne Tune's ``MOASHA``), without Ray: the adapter lives in :mod:`gatesearch.search.ray.scheduler`.

Rungs sit at ``grace · η^i`` epochs (below the full budget). When a trial reaches a
rung, its objective vector is recorded there and all vectors recorded at that rung
are ordered NSGA-II style: by Pareto rank (non-dominated sorting), then by crowding
distance (larger first); with a user-set hypervolume reference point, a vector inside its box
(better than the reference in every objective) goes before one outside it at the same rank. The
trial continues only if it is among the top
``ceil(m / η)`` of the ``m`` recorded so far; otherwise it is stopped. As in ASHA,
decisions are asynchronous: early arrivals are compared with fewer trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from gatesearch.search.pareto import crowding_distance, pareto_ranks


@dataclass
class MOASHA:
    """Rung bookkeeping and stop/continue decisions.

    Attributes:
        modes: per objective, ``"max"`` or ``"min"``.
        max_t: full budget in epochs (trials that reach it just finish).
        grace: first rung (epochs).
        eta: reduction factor (> 1).
        reference: the user's hypervolume reference point (objective order), or None.
    """

    modes: Sequence[str]
    max_t: int
    grace: int = 1
    eta: float = 3.0
    reference: Sequence[float] | None = None
    rungs: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.eta <= 1 or self.grace < 1 or self.max_t < 1:
            raise ValueError("MO-ASHA needs eta > 1, grace >= 1, max_t >= 1")
        milestones, t = [], float(self.grace)
        while t < self.max_t:
            milestones.append(int(round(t)))
            t *= self.eta
        self.milestones = sorted(set(milestones))
        self.rungs = {m: {} for m in self.milestones}

    def decide(self, trial_id: str, epoch: int, values: Sequence[float]) -> bool:
        """Record ``values`` if ``epoch`` is a rung; return True to continue, False to stop."""
        if epoch not in self.rungs or trial_id in self.rungs[epoch]:
            return True
        rung = self.rungs[epoch]
        rung[trial_id] = np.asarray(values, dtype=float)
        ids = list(rung)
        order = self.order(np.stack([rung[i] for i in ids]))
        keep = max(1, math.ceil(len(ids) / self.eta))
        return ids.index(trial_id) in set(order[:keep].tolist())

    def records(self) -> dict[str, dict[str, list[float]]]:
        """The rung records, JSON-ready: ``{epoch: {trial_id: values}}`` (keys are strings)."""
        return {str(m): {t: [float(v) for v in vals] for t, vals in rung.items()} for m, rung in self.rungs.items()}

    def load(self, records: dict[str, dict[str, list[float]]]) -> int:
        """Merge saved rung records (resume); returns how many were loaded. Records at epochs
        that are not rungs of this configuration are ignored."""
        n = 0
        for m, rung in records.items():
            if int(m) in self.rungs:
                for t, vals in rung.items():
                    self.rungs[int(m)].setdefault(t, np.asarray(vals, dtype=float))
                    n += 1
        return n

    def order(self, values: np.ndarray) -> np.ndarray:
        """Indices of ``values`` from best to worst: Pareto rank, then (with a reference point)
        inside the hypervolume box before outside, then crowding distance."""
        ranks = pareto_ranks(values, self.modes)
        crowd = np.zeros(len(values))
        for r in np.unique(ranks):
            idx = np.flatnonzero(ranks == r)
            crowd[idx] = crowding_distance(values[idx])
        outside = np.zeros(len(values), dtype=int)
        if self.reference is not None:
            ref = np.asarray(self.reference, dtype=float)
            better = [values[:, i] > ref[i] if m == "max" else values[:, i] < ref[i] for i, m in enumerate(self.modes)]
            outside = (~np.logical_and.reduce(better)).astype(int)
        return np.lexsort((-crowd, outside, ranks))
