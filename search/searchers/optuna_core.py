"""The ask/tell core over an Optuna study, used by every Optuna-sampler searcher of the registry, and
:func:`ask_feasible`: a proposal that meets the space's relations."""

from __future__ import annotations

import math
import random
from typing import Any, Mapping, Sequence

from gatesearch.spaces import config_key

#: proposals in a row that repeat a configuration with a result or running now, after which an unstuck
#: searcher's next proposal is drawn at random among the others (``OptunaCore(unstick_after=)``)
UNSTICK_AFTER = 3
#: draws tried for a configuration without a result before the sampler is left to propose
UNSTICK_DRAWS = 100


class OptunaCore:
    """Ask/tell over an Optuna study (in memory) with define-by-run suggestions of a space
    (:func:`gatesearch.spaces.suggest`: conditional parameters are suggested only when active).
    Running trials stay ``RUNNING`` in the study, so samplers that account for them (TPE's
    constant liar, BoTorch's pending points) see them."""

    def __init__(self, space, metrics: Sequence[str], modes: Sequence[str], sampler, *, budget: int,
                 capped: bool = True, constraints: Any = None, unstick_after: int | None = None, seed: int = 0):
        """``unstick_after``: a sampler that optimises its model deterministically (GP, BoTorch) is
        told a repeat's known result (deduplication answers it) and, its model barely changed,
        proposes the same configuration again: each ask a model fit of seconds, up to
        ``dedup.EXHAUSTED_AFTER`` of them (over an hour of BoTorch fits on NAS-Bench-201, where a
        50-trial search stalled at 10 trials); likewise with a running configuration, a repeat of
        which waits for it. After ``unstick_after`` such repeats in a row, the next proposal is drawn
        at random (``seed``ed) among the configurations neither finished nor running, and the sampler
        models it like any other. None: never (TPE, NSGA-II, random draw anew each ask)."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.metrics, self.budget, self.capped = space, list(metrics), budget, capped
        self.constraints = constraints or None
        self.observed: dict[str, list[float]] = {}  # key -> violations of its latest report
        self.study = optuna.create_study(directions=["maximize" if m == "max" else "minimize" for m in modes],
                                         sampler=sampler)
        self.pending: dict[str, Any] = {}
        self.asked = 0
        self.unstick_after, self.seed = unstick_after, int(seed)
        self.proposed: dict[str, str] = {}  # pending key -> its configuration's key
        self.known: set[str] = set()  # configurations told a result
        self.repeats = 0  # proposals in a row of a configuration in ``known`` or running now
        self.unstuck = 0  # proposals drawn at random to unstick the sampler

    def ask(self, key: str) -> dict[str, Any] | None:
        if self.capped and self.asked >= self.budget:
            return None
        self.pending[key], config = self._ask_from(self.study, key)
        return config

    def _ask_from(self, study, key: str) -> tuple[Any, dict[str, Any]]:
        """A feasible proposal of ``study`` for ``key``, charged to the budget; a stuck sampler is
        unstuck first (``unstick_after``). Every study a core samples from is asked through here."""
        if self.unstick_after and self.repeats >= self.unstick_after:
            self._enqueue_unseen(study)
        trial, config = ask_feasible(study, self.space)
        self.asked += 1
        self._count(key, config)
        return trial, config

    def _told(self, key: str, result: Mapping[str, Any] | None) -> None:
        """``key`` ended: no longer running, and its configuration, told a result, is known."""
        proposed = self.proposed.pop(key, None)
        if result is not None and proposed is not None:
            self.known.add(proposed)

    def _count(self, key: str, config: Mapping[str, Any]) -> None:
        """Track repeats of configurations with a result or running now (for ``unstick_after``)."""
        k = config_key(config)
        self.repeats = self.repeats + 1 if k in self.known or k in self.proposed.values() else 0
        self.proposed[key] = k

    def _enqueue_unseen(self, study) -> None:
        """Enqueue a configuration drawn uniformly that has no result and is not running (the
        next ask proposes it); none found in ``UNSTICK_DRAWS`` draws: the sampler proposes."""
        rng = random.Random(f"unstick:{self.seed}:{self.asked}")  # deterministic: a restore replays it
        busy = self.known | set(self.proposed.values())
        for _ in range(UNSTICK_DRAWS):
            config = self.space.sample(rng)
            if config_key(config) not in busy:
                study.enqueue_trial(config, skip_if_exists=False)
                self.unstuck += 1
                self.repeats = 0
                return

    def force(self, key: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Ask for ``key`` with ``config`` as the proposal (a restore whose replay diverged:
        :mod:`gatesearch.search.searchers.recorded`): the study the next ask samples from gets it enqueued."""
        self._next_study().enqueue_trial(dict(config), skip_if_exists=False)
        return self.ask(key)

    def _next_study(self):
        return self.study

    def tell(self, key: str, result: Mapping[str, Any] | None, *, stopped: bool = False) -> bool:
        """Tell ``key``'s final result. ``None`` with ``stopped``: stopped early by the scheduler
        (PRUNED, see :class:`gatesearch.search.ray.searcher.FullFidelityOnly`); ``None``
        or a non-finite value otherwise: FAIL. Returns whether a result was told."""
        import optuna

        trial = self.pending.pop(key, None)
        observed = self.observed.pop(key, None)
        self._told(key, result)
        if trial is None:
            return False
        if self.constraints is not None:  # Optuna 5: the samplers read a trial's constraints (<= 0: satisfied)
            violations = self.constraints.violations(result) if result else observed
            for name, v in zip(self.constraints.metrics, violations or ()):
                trial.set_constraint(name, v)
        if result is None and stopped:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return False
        values = [result.get(m) for m in self.metrics] if result else None
        if values is None or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return False
        self.study.tell(trial, [float(v) for v in values])
        return True

    def tell_known(self, config: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
        """Add an already evaluated ``config`` (a warm start: :mod:`gatesearch.search.lifecycle.warm_start`)
        as a completed trial, with its constraint violations; not an ask, so not charged."""
        import optuna

        from gatesearch.spaces import distributions

        values = [result.get(m) for m in self.metrics]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return False
        dists = distributions(self.space, dict(config))
        constraints = (dict(zip(self.constraints.metrics, self.constraints.violations(result)))
                       if self.constraints is not None else None)
        self.study.add_trial(optuna.trial.create_trial(params={n: config[n] for n in dists}, distributions=dists,
                                                       values=[float(v) for v in values], constraints=constraints))
        return True

    def observe(self, key: str, result: Mapping[str, Any]) -> None:
        """A running proposal's latest report: its violations are kept, for a trial stopped early."""
        if self.constraints is not None and key in self.pending:
            self.observed[key] = self.constraints.violations(result)


#: proposals a sampler may make that break the space's relations, in a row, before one is drawn
#: uniformly instead (:func:`ask_feasible`; Nevergrad, whose asks are cheap and who is told each one
#: was infeasible, gets ten times as many). A relation that bounds one parameter by others is never
#: broken (the range is narrowed); others (``n % 2 == 0``) are drawn again, and the Bayesian samplers
#: (gp, botorch), which do not learn from pruned trials, may need several model fits per proposal.
MAX_INFEASIBLE = 10


def ask_feasible(study, space) -> tuple[Any, dict[str, Any]]:
    """A new trial of ``study`` whose configuration of ``space`` meets the space's relations
    (:mod:`gatesearch.spaces.relations`), and that configuration. A proposal that breaks one is told
    PRUNED (TPE learns to avoid it: pruned trials are in its "bad" group) and the sampler asked
    again; after MAX_INFEASIBLE in a row, a uniformly drawn configuration that meets them is
    enqueued (a sampler stuck in an infeasible corner still proposes)."""
    import optuna

    from gatesearch.spaces import Infeasible, suggest

    for attempt in range(MAX_INFEASIBLE + 1):
        if attempt == MAX_INFEASIBLE:
            import random

            study.enqueue_trial(space.sample(random.Random(len(study.trials))), skip_if_exists=False)
        trial = study.ask()
        try:
            fixed = suggest(trial, space)  # returns the fixed values; Optuna records the suggested ones
        except Infeasible:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        values = {**trial.params, **fixed}
        return trial, {n: values[n] for n in space.params if n in values}
    raise ValueError("the space's relations could not be met")  # pragma: no cover - the enqueued draw meets them
