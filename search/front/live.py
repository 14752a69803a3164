"""The search's Pareto front, kept in memory and updated one finished trial at a time.

The driver never re-reads MLflow to know the front (that made a search quadratic in its
trials): every finished trial's objective values and summary row are added here as they
arrive. The non-dominated set is maintained incrementally (a new point is checked against the
current front only), so adding a trial costs O(|front|), and the hypervolume is computed over
the front alone. Full non-dominated sorting (the ``pareto_rank`` of every trial, moocore) is
done on demand, and :meth:`LiveFront.rank_changes` returns only the ranks that changed since
the previous call, so the tracking store is written only for those.

Infeasible trials (outside the search's constraints, :mod:`gatesearch.search.config.constraints`) are
kept with the others but never on the front: their rank is after every feasible trial's.

On ``gatesearch resume`` the front is rebuilt once from the finished child runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from gatesearch.search.front.pareto import hypervolume, pareto_ranks


@dataclass
class FrontEntry:
    """One finished trial as the front sees it."""

    trial_id: str
    run_id: str
    values: np.ndarray  # (M,) objective values, in the objectives' order
    row: dict[str, Any] = field(default_factory=dict)  # summary shown in tables and artifacts
    feasible: bool = True  # inside the search's constraints (an infeasible trial is never on the front)


class LiveFront:
    """Finished trials and their Pareto front, for objectives ``names`` with directions ``modes``."""

    def __init__(self, names: Sequence[str], modes: Sequence[str]):
        self.names, self.modes = tuple(names), tuple(modes)
        # minimisation signs: a point p dominates q when (sign*p <= sign*q) everywhere and < somewhere
        self._sign = np.array([-1.0 if m == "max" else 1.0 for m in self.modes])
        self.entries: list[FrontEntry] = []
        self._index: dict[str, int] = {}
        self._front: list[int] = []  # indices into entries of the current non-dominated set
        self._written_ranks: dict[str, int] = {}  # run id -> rank last handed out by rank_changes()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, trial_id: str) -> bool:
        return trial_id in self._index

    def add(self, trial_id: str, run_id: str, metrics: Mapping[str, Any], row: Mapping[str, Any],
            infeasible: str = "") -> bool:
        """Record a finished trial; returns whether it is on the front now. Re-adding a trial
        replaces its values (a resumed search may report a trial again). ``infeasible``: why the
        trial violates the search's constraints ("" when it does not); it is kept off the front
        and its row says why."""
        values = np.array([float(metrics.get(n, np.nan)) for n in self.names], dtype=float)
        entry = FrontEntry(trial_id, run_id, values,
                           {"run_id": run_id, **row, **{n: metrics.get(n) for n in self.names},
                            **({"infeasible": infeasible} if infeasible else {})}, feasible=not infeasible)
        if trial_id in self._index:
            self.entries[self._index[trial_id]] = entry
            self._rebuild_front()
            return self._index[trial_id] in self._front
        self._index[trial_id] = len(self.entries)
        self.entries.append(entry)
        if not entry.feasible or not np.isfinite(values).all():  # NaN: dominated by everything (botorch's rule)
            return False
        i = len(self.entries) - 1
        if not self._front:
            self._front.append(i)
            return True
        f = self._sign * np.array([self.entries[j].values for j in self._front])  # (F, M), minimise all
        p = self._sign * values
        if bool(((f <= p).all(axis=1) & (f < p).any(axis=1)).any()):
            return False  # dominated by a front point
        # keep the front points p does not dominate (an equal point stays: neither dominates)
        keep = ~((p <= f).all(axis=1) & (p < f).any(axis=1))
        self._front = [j for j, k in zip(self._front, keep) if k] + [i]
        return True

    def _rebuild_front(self) -> None:
        vals = self.values()
        ranks = self.ranks()
        finite = np.isfinite(vals).all(axis=1) if len(vals) else np.zeros(0, bool)
        feasible = self.feasible()
        self._front = [i for i, (r, ok, f) in enumerate(zip(ranks, finite, feasible)) if r == 0 and ok and f]

    def feasible(self) -> np.ndarray:
        """``(N,)`` bool: whether each finished trial satisfies the search's constraints."""
        return np.array([e.feasible for e in self.entries], dtype=bool)

    def infeasible_count(self) -> int:
        return sum(1 for e in self.entries if not e.feasible)

    def values(self) -> np.ndarray:
        """``(N, M)`` objective values of every finished trial, in arrival order."""
        return np.array([e.values for e in self.entries], dtype=float).reshape(len(self.entries), len(self.names))

    def front_values(self) -> np.ndarray:
        return np.array([self.entries[i].values for i in self._front], dtype=float).reshape(
            len(self._front), len(self.names))

    def front_rows(self) -> list[dict[str, Any]]:
        """The front's summary rows, rank 0, sorted by the second objective (e.g. MACs)."""
        rows = [{**self.entries[i].row, "pareto_rank": 0} for i in self._front]
        return sorted(rows, key=lambda r: r[self.names[-1]])

    def hypervolume(self, ref: Sequence[float]) -> float:
        """Hypervolume of the front w.r.t. ``ref`` (equal to that of all finished trials)."""
        return hypervolume(self.front_values(), self.modes, ref) if self._front else 0.0

    def hypervolume_share(self, ref: Sequence[float]) -> float:
        """The hypervolume as a share of the box between ``ref`` and the ideal point (the best
        value of each objective over the finished trials); 1 = a single point dominates the box."""
        vals = self.front_values()
        if not len(vals):
            return 0.0
        ideal = np.where(self._sign < 0, vals.max(axis=0), vals.min(axis=0))
        box = float(np.prod(np.abs(ideal - np.asarray(ref, dtype=float))))
        return self.hypervolume(ref) / box if box > 0 else 0.0

    def ranks(self) -> np.ndarray:
        """``(N,)`` Pareto rank of every finished trial (moocore non-dominated sorting): the
        feasible trials' layers first, then the infeasible trials' own layers after them."""
        vals = self.values()
        if not len(vals):
            return np.zeros(0, int)
        feasible = self.feasible()
        if feasible.all():
            return pareto_ranks(vals, self.modes)
        ranks = np.zeros(len(vals), dtype=int)
        if feasible.any():
            ranks[feasible] = pareto_ranks(vals[feasible], self.modes)
        ranks[~feasible] = pareto_ranks(vals[~feasible], self.modes) + (ranks[feasible].max() + 1 if feasible.any() else 0)
        return ranks

    def rows(self, ranks: np.ndarray | None = None) -> list[dict[str, Any]]:
        """Every finished trial's summary row with its Pareto rank."""
        ranks = self.ranks() if ranks is None else ranks
        return [{**e.row, "pareto_rank": int(r)} for e, r in zip(self.entries, ranks)]

    def mark_written(self, run_id: str, rank: int) -> None:
        """Record that the store already holds ``rank`` for ``run_id`` (read back on resume)."""
        self._written_ranks[run_id] = int(rank)

    def rank_changes(self, ranks: np.ndarray | None = None) -> dict[str, int]:
        """``run id -> rank`` for the trials whose rank differs from what this method last
        returned (all of them the first time). Handing them out marks them as written."""
        ranks = self.ranks() if ranks is None else ranks
        changed = {}
        for e, r in zip(self.entries, ranks):
            if self._written_ranks.get(e.run_id) != int(r):
                changed[e.run_id] = int(r)
        self._written_ranks.update(changed)
        return changed
