"""Multi-objective asynchronous successive halving (MO-ASHA; Schmucker et al. 2021,
Syne Tune's ``MOASHA``), without Ray: the adapter lives in :mod:`gatesearch.search.ray.scheduler`.

Rungs sit at ``grace · η^i`` epochs (below the full budget). When a trial reaches a
rung, its objective vector is recorded there and all vectors recorded at that rung
are ordered NSGA-II style: by Pareto rank (non-dominated sorting), then by crowding
distance (larger first); with a user-set hypervolume reference point, a vector inside its box
(better than the reference in every objective) goes before one outside it at the same rank; with
outcome constraints (:mod:`gatesearch.search.config.constraints`), every feasible vector goes before every
infeasible one (Deb's constrained domination, as NSGA-II with constraints).

Two ways to act on that order (``promote``):

- **stopping** (``promote=False``; Syne Tune's MOASHA): the trial continues only if it is among
  the top ``ceil(m / η)`` of the ``m`` recorded so far; otherwise it is stopped. Decisions are
  asynchronous: early arrivals are compared with fewer trials, so most of the first trials run on.
- **promotion** (``promote=True``; asynchronous SHA as Li et al. 2020 define it, Syne Tune's
  ``type="promotion"``): every trial *pauses* at a rung. When a worker frees up it resumes (from
  the trial's checkpoint: no epoch is trained twice) a paused trial that is among the top
  ``floor(m / η)`` of its rung and was not promoted from it yet, the highest rung first; only
  when there is none does a new configuration start. A trial that is never promoted ends at its
  rung (stopped early).

Hyperband brackets (``brackets > 1``, Li et al. 2018): bracket ``s`` starts at ``grace · η^s``
epochs and has its own rungs, so a trial's first comparison comes later in higher brackets (the
last may have none: its trials run to the end). Trials are assigned to brackets in Hyperband's
proportions, ``η^r / (r + 1)`` for a bracket of ``r`` rungs, deterministically (the bracket
furthest below its share), and the assignment is part of the records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from gatesearch.search.front.pareto import crowding_distance, pareto_ranks

CONTINUE, STOP, PAUSE = "continue", "stop", "pause"


def rung_epochs(grace: int, eta: float, max_t: int) -> list[int]:
    """``grace · η^i`` (rounded) below ``max_t``."""
    milestones, t = [], float(grace)
    while t < max_t:
        milestones.append(int(round(t)))
        t *= eta
    return sorted(set(milestones))


@dataclass
class MOASHA:
    """Rung bookkeeping and continue/stop/pause decisions.

    Attributes:
        modes: per objective, ``"max"`` or ``"min"``.
        max_t: full budget in epochs (trials that reach it just finish).
        grace: first rung (epochs) of the first bracket.
        eta: reduction factor (> 1).
        reference: the user's hypervolume reference point (objective order), or None.
        brackets: Hyperband brackets (1: plain ASHA).
        promote: promotion-based (pause at a rung, resume the promoted) instead of stopping.
    """

    modes: Sequence[str]
    max_t: int
    grace: int = 1
    eta: float = 3.0
    reference: Sequence[float] | None = None
    brackets: int = 1
    promote: bool = False
    # bracket -> rung epoch -> trial -> values; bracket 0's is also ``rungs``
    levels: list[dict[int, dict[str, np.ndarray]]] = field(default_factory=list)
    outside: list[dict[int, set[str]]] = field(default_factory=list)  # bracket -> rung -> infeasible trials
    promoted: list[dict[int, set[str]]] = field(default_factory=list)  # bracket -> rung -> promoted from it
    stopped: list[dict[int, set[str]]] = field(default_factory=list)  # bracket -> rung -> stopped there
    assigned: dict[str, int] = field(default_factory=dict)  # trial -> bracket

    def __post_init__(self) -> None:
        if self.eta <= 1 or self.grace < 1 or self.max_t < 1 or self.brackets < 1:
            raise ValueError("MO-ASHA needs eta > 1, grace >= 1, max_t >= 1, brackets >= 1")
        self.milestones = rung_epochs(self.grace, self.eta, self.max_t)
        self.brackets = min(self.brackets, len(self.milestones) + 1)  # beyond that, brackets repeat the last
        self.bracket_rungs = [self.milestones[s:] for s in range(self.brackets)]
        self.levels = [{m: {} for m in ms} for ms in self.bracket_rungs]
        self.outside = [{m: set() for m in ms} for ms in self.bracket_rungs]
        self.promoted = [{m: set() for m in ms} for ms in self.bracket_rungs]
        self.stopped = [{m: set() for m in ms} for ms in self.bracket_rungs]
        self.assigned = {}

    # bracket 0, as before brackets existed (the scheduler, the records and the tests read them)
    @property
    def rungs(self) -> dict[int, dict[str, np.ndarray]]:
        return self.levels[0]

    @property
    def infeasible(self) -> dict[int, set[str]]:
        return self.outside[0]

    def bracket(self, trial_id: str) -> int:
        """The trial's bracket (assigned on first use, in Hyperband's proportions)."""
        if trial_id not in self.assigned:
            if self.brackets == 1:
                self.assigned[trial_id] = 0
            else:
                weights = np.array([self.eta ** len(r) / (len(r) + 1) for r in self.bracket_rungs])
                counts = np.bincount(list(self.assigned.values()), minlength=self.brackets)
                share = weights / weights.sum() * (len(self.assigned) + 1)
                self.assigned[trial_id] = int(np.argmax(share - counts))  # furthest below its share
        return self.assigned[trial_id]

    def is_rung(self, trial_id: str, epoch: int) -> bool:
        return epoch in self.levels[self.bracket(trial_id)]

    def on_result(self, trial_id: str, epoch: int, values: Sequence[float], feasible: bool = True,
                  paused: Iterable[str] = ()) -> str:
        """Record ``values`` (and whether the trial is inside the search's constraints at this
        epoch) if ``epoch`` is a rung of the trial's bracket; return ``CONTINUE``, ``STOP`` or
        (promotion) ``PAUSE``. With promotion, a trial that arrives at a rung continues at once
        when it is the one :meth:`promotable` would resume next (``paused``: the trials paused now)."""
        b = self.bracket(trial_id)
        if epoch not in self.levels[b]:
            return CONTINUE
        rung = self.levels[b][epoch]
        if trial_id in rung:  # reported again (a resumed trial, from a snapshot older than the decision): decided already
            if self.promote:
                return CONTINUE if trial_id in self.promoted[b][epoch] else PAUSE
            return STOP if trial_id in self.stopped[b][epoch] else CONTINUE
        rung[trial_id] = np.asarray(values, dtype=float)
        if not feasible:
            self.outside[b][epoch].add(trial_id)
        if self.promote:
            if self.promotable([*paused, trial_id], mark=False) == trial_id:
                self.promoted[b][epoch].add(trial_id)
                return CONTINUE
            return PAUSE
        ids = list(rung)
        order = self.order(np.stack([rung[i] for i in ids]), np.array([i not in self.outside[b][epoch] for i in ids]))
        keep = max(1, math.ceil(len(ids) / self.eta))
        if ids.index(trial_id) in set(order[:keep].tolist()):
            return CONTINUE
        self.stopped[b][epoch].add(trial_id)
        return STOP

    def decide(self, trial_id: str, epoch: int, values: Sequence[float], feasible: bool = True) -> bool:
        """Stopping mode: record ``values`` at a rung; True to continue, False to stop."""
        return self.on_result(trial_id, epoch, values, feasible) != STOP

    def promotable(self, paused: Iterable[str], mark: bool = True) -> str | None:
        """Promotion: the paused trial to resume next, or None (then a new trial starts). The
        highest rung first (of any bracket); at a rung, the best of its top ``floor(m / η)`` not
        promoted from it yet. ``mark``: record the promotion."""
        paused = set(paused)
        if not paused:
            return None
        best: tuple[int, int, str] | None = None
        for b, rungs in enumerate(self.levels):
            for m in sorted(rungs, reverse=True):
                rung = rungs[m]
                keep = int(len(rung) // self.eta)
                if not keep or best is not None and best[0] >= m:
                    continue
                ids = list(rung)
                order = self.order(np.stack([rung[i] for i in ids]), np.array([i not in self.outside[b][m] for i in ids]))
                for i in order[:keep]:
                    t = ids[i]
                    if t not in self.promoted[b][m] and t in paused:
                        best = (m, b, t)
                        break
        if best is None:
            return None
        if mark:
            self.promoted[best[1]][best[0]].add(best[2])
        return best[2]

    def paused_at(self, trial_id: str) -> int | None:
        """The rung a trial is waiting at (promotion), or None: its highest recorded rung if it was
        not promoted from there."""
        b = self.assigned.get(trial_id)
        if b is None:
            return None
        reached = [m for m, rung in self.levels[b].items() if trial_id in rung]
        if not reached:
            return None
        top = max(reached)
        return None if trial_id in self.promoted[b][top] else top

    def records(self) -> dict[str, dict]:
        """The rung records, JSON-ready: ``{epoch: {trial_id: values}}`` (keys are strings) for the
        first bracket; under ``"infeasible"`` ``{epoch: [trial_id, ...]}`` when a trial was outside
        the constraints; under ``"promoted"`` the promotions; under ``"stopped"`` the trials stopped at
        a rung (a trial restored from an older snapshot is stopped there again); under ``"brackets"`` the trials'
        brackets and the other brackets' records (each in this same form)."""
        out = self._bracket_records(0)
        if self.brackets > 1:
            out["brackets"] = {"assigned": dict(self.assigned),
                               **{str(b): self._bracket_records(b) for b in range(1, self.brackets)}}
        return out

    def _bracket_records(self, b: int) -> dict[str, dict]:
        out: dict[str, dict] = {str(m): {t: [float(v) for v in vals] for t, vals in rung.items()}
                                for m, rung in self.levels[b].items()}
        if any(self.outside[b].values()):
            out["infeasible"] = {str(m): sorted(ids) for m, ids in self.outside[b].items() if ids}
        for key, sets in (("promoted", self.promoted[b]), ("stopped", self.stopped[b])):
            if any(sets.values()):
                out[key] = {str(m): sorted(ids) for m, ids in sets.items() if ids}
        return out

    def load(self, records: dict[str, dict]) -> int:
        """Merge saved rung records (resume); returns how many were loaded. Records at epochs
        that are not rungs of this configuration are ignored."""
        n = self._load_bracket(0, records)
        more = records.get("brackets", {})
        for t, b in more.get("assigned", {}).items():
            if b < self.brackets:
                self.assigned.setdefault(t, int(b))
        for b in range(1, self.brackets):
            n += self._load_bracket(b, more.get(str(b), {}))
        for b in range(self.brackets):  # a trial with records and no assignment (one bracket) is in its bracket
            for rung in self.levels[b].values():
                for t in rung:
                    self.assigned.setdefault(t, b)
        return n

    def _load_bracket(self, b: int, records: dict[str, dict]) -> int:
        n = 0
        for key, target in (("infeasible", self.outside[b]), ("promoted", self.promoted[b]), ("stopped", self.stopped[b])):
            for m, ids in records.get(key, {}).items():
                if int(m) in target:
                    target[int(m)].update(ids)
        for m, rung in records.items():
            if m.isdigit() and int(m) in self.levels[b]:
                for t, vals in rung.items():
                    self.levels[b][int(m)].setdefault(t, np.asarray(vals, dtype=float))
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
