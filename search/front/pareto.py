"""Pareto ranks and hypervolume of trial results (moocore), with NaN handling.

A row with a NaN or infinite objective is treated as dominated by everything
(botorch's rule) and gets the worst rank.
"""

from __future__ import annotations

from typing import Sequence

import moocore
import numpy as np


def _maximise(modes: Sequence[str]) -> list[bool]:
    bad = [m for m in modes if m not in ("max", "min")]
    if bad:
        raise ValueError(f"modes must be 'max' or 'min', got {bad}")
    return [m == "max" for m in modes]


def _matrix(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """``values`` as a float ``(N, M)`` array, M = len(modes)."""
    return np.asarray(values, dtype=float).reshape(len(values), len(modes))


def pareto_ranks(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Non-dominated sorting: 0 for the Pareto front, 1 for the next layer, ...

    Args:
        values: ``(N, M)`` objective values, one row per trial.
        modes: ``M`` directions, ``"max"`` or ``"min"``.
    Returns:
        ``(N,)`` int ranks; non-finite rows get ``max_rank + 1``.
    """
    values = _matrix(values, modes)
    ranks = np.zeros(len(values), dtype=int)
    finite = np.isfinite(values).all(axis=1)
    if finite.any():
        ranks[finite] = moocore.pareto_rank(values[finite], maximise=_maximise(modes))
    ranks[~finite] = (ranks[finite].max() + 1) if finite.any() else 0
    return ranks


def front_mask(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """``(N,)`` bool: rows on the Pareto front (rank 0, finite)."""
    values = _matrix(values, modes)
    return (pareto_ranks(values, modes) == 0) & np.isfinite(values).all(axis=1)


#: the default reference point lies this share of the observed range beyond the observed nadir
REFERENCE_OFFSET = 0.1


def reference_point(values: np.ndarray, modes: Sequence[str], offset: float = REFERENCE_OFFSET) -> np.ndarray:
    """Default hypervolume reference: the observed nadir (the worst finite value of each
    objective over ``values``) moved ``offset`` × the observed range further out, so every
    observed trial adds volume and the box is the region the search has seen.

    Not the front's own nadir: the reference is fixed at the first front log (a few trials in),
    and a cheaper but less accurate trial found later would lie outside a box around that early
    front and add nothing. Not (0, 1.1 x max cost) either (the default until 2026-11): an
    accuracy reference of 0 makes the box so large that every searcher's hypervolume is within
    a few percent of every other's. With one observed value (range 0) the offset is taken of
    that value's magnitude (or 1 if it is 0)."""
    values = _matrix(values, modes)
    ref = []
    for j, m in enumerate(modes):
        col = values[np.isfinite(values[:, j]), j]
        if not col.size:
            ref.append(0.0 if m == "max" else 1.0)
            continue
        worst, best = (col.min(), col.max()) if m == "max" else (col.max(), col.min())
        span = abs(best - worst) or (abs(worst) or 1.0)
        ref.append(float(worst - offset * span) if m == "max" else float(worst + offset * span))
    return np.array(ref)


def hypervolume(values: np.ndarray, modes: Sequence[str], ref: Sequence[float]) -> float:
    """Hypervolume dominated by the finite rows w.r.t. ``ref`` (moocore)."""
    values = _matrix(values, modes)
    values = values[np.isfinite(values).all(axis=1)]
    if not len(values):
        return 0.0
    return float(moocore.hypervolume(values, ref=np.asarray(ref, dtype=float), maximise=_maximise(modes)))


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of the rows of one front (boundary rows get inf).

    For each objective, rows are sorted and each inner row gets the normalised gap
    between its two neighbours; the distances are summed over objectives.
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n <= 2:
        return np.full(n, np.inf)
    dist = np.zeros(n)
    for j in range(values.shape[1]):
        order = np.argsort(values[:, j], kind="stable")
        col = values[order, j]
        span = col[-1] - col[0]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (col[2:] - col[:-2]) / span
    return dist
