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
import numpy as np

from gatesearch._hints import did_you_mean
from gatesearch.search.searchers.registry import MAX_INFEASIBLE
from gatesearch.spaces import Space, decode, encode, to_parametrization


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
        constraints: outcome constraints (:class:`~gatesearch.search.config.constraints.Constraints`), or
            None. Nevergrad's own ``constraint_violation`` penalises only a scalar loss (a
            multi-objective point enters its Pareto archive before the penalty, and the penalty is
            0 in the budget's first half), so an infeasible result is told with penalised losses
            instead: each objective's worst loss told so far plus ``(1 + total violation)`` times
            its observed range (Deb's rule: dominated by every feasible result), never joining the
            front Nevergrad keeps.
    """

    def __init__(self, space: Space, metrics: Sequence[str], modes: Sequence[str], *, optimizer: str = "NGOpt",
                 budget: int, num_workers: int, seed: int = 0, capped: bool = True,
                 constraints=None):
        if optimizer not in ng.optimizers.registry:
            raise ValueError(f"nevergrad_optimizer: unknown {optimizer!r}"
                             f"{did_you_mean(optimizer, ng.optimizers.registry)}")
        if len(metrics) != len(modes) or any(m not in ("max", "min") for m in modes):
            raise ValueError("metrics and modes must have equal length, modes 'max' or 'min'")
        self.space, self.metrics, self.modes = space, list(metrics), list(modes)
        self.budget = budget
        self.capped = capped
        self.constraints = constraints or None
        param = to_parametrization(space, seed=seed)
        with warnings.catch_warnings():  # e.g. "ES algorithms are inefficient with budget < 60"
            warnings.simplefilter("ignore", ng.errors.InefficientSettingsWarning)
            self.optimizer = ng.optimizers.registry[optimizer](parametrization=param, budget=budget,
                                                               num_workers=num_workers)
        self.pending: dict[str, Any] = {}
        self.asked = 0
        self.told = 0
        self._worst: np.ndarray | None = None  # per objective, the worst and best losses told so far
        self._best: np.ndarray | None = None

    def ask(self, key: str) -> dict[str, Any] | None:
        """A configuration for ``key``, or None once ``budget`` asks were made (when capped)."""
        if self.capped and self.asked >= self.budget:
            return None
        for _ in range(10 * MAX_INFEASIBLE):
            cand = self.optimizer.ask()
            config = decode(self.space, cand.value)
            if self.space.broken(config) is None:
                break
            # breaks a relation of the space: told as worse than anything, then asked again
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ng.errors.NevergradRuntimeWarning)
                self.optimizer.tell(cand, self._infeasible_losses())
        else:  # a uniformly drawn configuration that meets them, told to Nevergrad as its own
            import random

            config = self.space.sample(random.Random(self.asked))
            cand = self.optimizer.parametrization.spawn_child()
            cand.value = encode(self.space, config, self.optimizer.parametrization.value)
        self.asked += 1
        self.pending[key] = cand
        return config

    def _infeasible_losses(self) -> list[float]:
        if self._worst is None:
            return [1e12] * len(self.metrics)
        span = np.maximum(self._worst - self._best, np.maximum(np.abs(self._worst), 1e-12))
        return (self._worst + 1e3 * span).tolist()

    def force(self, key: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Ask for ``key`` with ``config`` as the proposal (a restore whose replay diverged:
        :mod:`gatesearch.search.searchers.recorded`): a candidate Nevergrad did not ask for, as a warm start's."""
        if self.capped and self.asked >= self.budget:
            return None
        cand = self.optimizer.parametrization.spawn_child()
        cand.value = encode(self.space, dict(config), self.optimizer.parametrization.value)
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
            self.optimizer.tell(cand, self._penalised(losses, result))
        self.told += 1
        return True

    def tell_known(self, config: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
        """Tell an already evaluated ``config`` (a warm start) as a candidate Nevergrad did not
        ask for; not an ask, so not charged."""
        losses = self.losses(result)
        if losses is None:
            return False
        cand = self.optimizer.parametrization.spawn_child()
        cand.value = encode(self.space, dict(config), self.optimizer.parametrization.value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ng.errors.NevergradRuntimeWarning)
            self.optimizer.tell(cand, self._penalised(losses, result))
        self.told += 1
        return True

    def _penalised(self, losses: list[float], result: Mapping[str, Any]) -> list[float]:
        """``losses``, or for a result outside the constraints losses worse than every told one."""
        arr = np.asarray(losses, dtype=float)
        violation = sum(max(0.0, v) for v in self.constraints.violations(result)) if self.constraints else 0.0
        if violation > 0 and self._worst is not None:
            span = np.maximum(self._worst - self._best, np.maximum(np.abs(self._worst), 1e-12))
            arr = np.maximum(arr, self._worst) + (1.0 + min(violation, 1e3)) * span
        self._worst = arr.copy() if self._worst is None else np.maximum(self._worst, arr)
        self._best = arr.copy() if self._best is None else np.minimum(self._best, arr)
        return arr.tolist()

    def pareto_front(self) -> list[dict[str, Any]]:
        """Nevergrad's own Pareto set, decoded."""
        return [decode(self.space, c.value) for c in self.optimizer.pareto_front()]
