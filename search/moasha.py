"""Multi-objective asynchronous successive halving (MO-ASHA; Schmucker et al. 2021,
Syne Tune's ``MOASHA``), without Ray: the adapter lives in :mod:`gatesearch.search.ray.scheduler`.

Rungs sit at ``grace · η^i`` epochs (below the full budget). When a trial reaches a
rung, its objective vector is recorded there and all vectors recorded at that rung
are ordered NSGA-II style: by Pareto rank (non-dominated sorting), then by crowding
distance (larger first); with a user-set hypervolume reference point, a vector inside its box
(better than the reference in every objective) goes before one outside it at the same rank; with
outcome constraints (:mod:`gatesearch.search.constraints`), every feasible vector goes before every
infeasible one (Deb's constrained domination, as NSGA-II with constraints). The
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
    infeasible: dict[int, set[str]] = field(default_factory=dict)  # rung -> trials outside the constraints

    def __post_init__(self) -> None:
        if self.eta <= 1 or self.grace < 1 or self.max_t < 1:
            raise ValueError("MO-ASHA needs eta > 1, grace >= 1, max_t >= 1")
        milestones, t = [], float(self.grace)
        while t < self.max_t:
            milestones.append(int(round(t)))
            t *= self.eta
        self.milestones = sorted(set(milestones))
        self.rungs = {m: {} for m in self.milestones}
        self.infeasible = {m: set() for m in self.milestones}

    def decide(self, trial_id: str, epoch: int, values: Sequence[float], feasible: bool = True) -> bool:
        """Record ``values`` (and whether the trial is inside the search's constraints at this
        epoch) if ``epoch`` is a rung; return True to continue, False to stop."""
        if epoch not in self.rungs or trial_id in self.rungs[epoch]:
            return True
        rung = self.rungs[epoch]
        rung[trial_id] = np.asarray(values, dtype=float)
        if not feasible:
            self.infeasible[epoch].add(trial_id)
        ids = list(rung)
        order = self.order(np.stack([rung[i] for i in ids]), np.array([i not in self.infeasible[epoch] for i in ids]))
        keep = max(1, math.ceil(len(ids) / self.eta))
        return ids.index(trial_id) in set(order[:keep].tolist())

    def records(self) -> dict[str, dict]:
        """The rung records, JSON-ready: ``{epoch: {trial_id: values}}`` (keys are strings), and
        under ``"infeasible"`` ``{epoch: [trial_id, ...]}`` when a trial was outside the constraints."""
        out: dict[str, dict] = {str(m): {t: [float(v) for v in vals] for t, vals in rung.items()}
                                for m, rung in self.rungs.items()}
        if any(self.infeasible.values()):
            out["infeasible"] = {str(m): sorted(ids) for m, ids in self.infeasible.items() if ids}
        return out

    def load(self, records: dict[str, dict]) -> int:
        """Merge saved rung records (resume); returns how many were loaded. Records at epochs
        that are not rungs of this configuration are ignored."""
        n = 0
        for m, ids in records.get("infeasible", {}).items():
            if int(m) in self.infeasible:
                self.infeasible[int(m)].update(ids)
        for m, rung in records.items():
            if m.isdigit() and int(m) in self.rungs:
                for t, vals in rung.items():
                    self.rungs[int(m)].setdefault(t, np.asarray(vals, dtype=float))
                    n += 1
        return n

    def order(self, values: np.ndarray, feasible: np.ndarray | None = None) -> np.ndarray:
        """Indices of ``values`` from best to worst: feasible before infeasible, then Pareto rank
        (among the feasible, and among the infeasible), then (with a reference point) inside the
        hypervolume box before outside, then crowding distance."""
        feasible = np.ones(len(values), bool) if feasible is None else np.asarray(feasible, dtype=bool)
        ranks = np.zeros(len(values), dtype=int)
        for group in (feasible, ~feasible):
            if group.any():
                ranks[group] = pareto_ranks(values[group], self.modes)
        crowd = np.zeros(len(values))
        for r in np.unique(ranks):  # crowding within a layer of one group
            for group in (feasible, ~feasible):
                idx = np.flatnonzero((ranks == r) & group)
                if len(idx):
                    crowd[idx] = crowding_distance(values[idx])
        outside = np.zeros(len(values), dtype=int)
        if self.reference is not None:
            ref = np.asarray(self.reference, dtype=float)
            better = [values[:, i] > ref[i] if m == "max" else values[:, i] < ref[i] for i, m in enumerate(self.modes)]
            outside = (~np.logical_and.reduce(better)).astype(int)
        return np.lexsort((-crowd, outside, ranks, ~feasible))
