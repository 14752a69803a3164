"""Multi-objective Nevergrad ask/tell over a :class:`spaces.Space` (no Ray here).

Ray's ``NevergradSearch`` tells Nevergrad a single scalar; this tells it the list of
losses (maximised metrics negated), so Nevergrad keeps its own Pareto archive.
Proposals are reproducible for a seed (the parametrization's random state is seeded).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import nevergrad as ng

from gatesearch._hints import did_you_mean
from gatesearch.spaces import Space, decode, to_parametrization


class NevergradMO:
    """Ask configurations, tell multi-objective results.

    Args:
        space: the search space (conditionals respected).
        metrics, modes: objective names and ``"max"``/``"min"`` directions.
        optimizer: a Nevergrad registry name (e.g. ``NGOpt``, ``DE``, ``RandomSearch``).
        budget: the number of evaluations Nevergrad plans for (its optimizers adapt to it).
        capped: whether :meth:`ask` returns None after ``budget`` asks (not behind Ray Tune, where
            ``num_samples`` bounds the trials and repeats answered from memory are asks that are
            not trials: :class:`~gatesearch.search.ray.searcher.Deduplicated`).
        num_workers: how many candidates may be pending at once.
        seed: seeds the parametrization's random state.
    """

    def __init__(self, space: Space, metrics: Sequence[str], modes: Sequence[str], *, optimizer: str = "NGOpt",
                 budget: int, num_workers: int, seed: int = 0, capped: bool = True):
        if optimizer not in ng.optimizers.registry:
            raise ValueError(f"nevergrad_optimizer: unknown {optimizer!r}"
                             f"{did_you_mean(optimizer, ng.optimizers.registry)}")
        if len(metrics) != len(modes) or any(m not in ("max", "min") for m in modes):
            raise ValueError("metrics and modes must have equal length, modes 'max' or 'min'")
        self.space, self.metrics, self.modes = space, list(metrics), list(modes)
        self.budget = budget
        self.capped = capped
        param = to_parametrization(space, seed=seed)
        with warnings.catch_warnings():  # e.g. "ES algorithms are inefficient with budget < 60"
            warnings.simplefilter("ignore", ng.errors.InefficientSettingsWarning)
            self.optimizer = ng.optimizers.registry[optimizer](parametrization=param, budget=budget,
                                                               num_workers=num_workers)
        self.pending: dict[str, Any] = {}
        self.asked = 0
        self.told = 0

    def ask(self, key: str) -> dict[str, Any] | None:
        """A configuration for ``key``, or None once ``budget`` asks were made (when capped)."""
        if self.capped and self.asked >= self.budget:
            return None
        cand = self.optimizer.ask()
        self.asked += 1
        self.pending[key] = cand
        return decode(self.space, cand.value)

    def losses(self, result: Mapping[str, Any]) -> list[float] | None:
        """Losses to minimise, or None if an objective is missing or not finite."""
        out = []
        for name, mode in zip(self.metrics, self.modes):
            v = result.get(name)
            if not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                return None
            out.append(-float(v) if mode == "max" else float(v))
        return out

    def tell(self, key: str, result: Mapping[str, Any] | None, *, stopped: bool = False) -> bool:
        """Tell the final result of ``key``; failed, stopped-early (``stopped``) or incomplete
        results are not told."""
        cand = self.pending.pop(key, None)
        losses = self.losses(result) if (cand is not None and result) else None
        if losses is None:
            return False
        with warnings.catch_warnings():
            # Nevergrad's multi-objective archive scores dominated points with an inf
            # pseudo-loss internally and warns about it; that is expected here.
            warnings.simplefilter("ignore", ng.errors.NevergradRuntimeWarning)
            self.optimizer.tell(cand, losses)
        self.told += 1
        return True

    def pareto_front(self) -> list[dict[str, Any]]:
        """Nevergrad's own Pareto set, decoded."""
        return [decode(self.space, c.value) for c in self.optimizer.pareto_front()]
