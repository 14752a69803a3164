"""A searcher that learns from rung results too (BOHB-style; Falkner et al. 2018).

With MO-ASHA most trials end at a low rung, and a searcher told only full-fidelity results learns
from the few that finish. :class:`RungModelCore` keeps one Optuna study per fidelity: the rung
epochs of the scheduler and the full budget. Every result a trial reports at a rung is added to
that rung's study, every final result to the full one; each proposal is sampled from the study of
the **highest fidelity with at least** ``min_points`` **completed observations** (BOHB's rule: model
the largest budget with enough points), so the first proposals learn from the many one-epoch
results and later ones from the finished trials. A trial the scheduler stopped is added to the
full study as pruned, as :class:`~gatesearch.search.searchers.registry.OptunaCore` tells it. Multi-objective
throughout: each study is the sampler's (TPE: MOTPE) over all objectives, with the constraints.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from gatesearch.objectives.metrics import EPOCH
from gatesearch.search.searchers.registry import OptunaCore


class RungModelCore(OptunaCore):
    """Ask/tell over one Optuna study per fidelity (see the module).

    Args:
        samplers: one seeded sampler for the full-fidelity study, then one per rung.
        fidelities: the rung epochs (below the full budget).
        min_points: completed observations a fidelity needs before proposals are sampled from it.
    """

    def __init__(self, space, metrics: Sequence[str], modes: Sequence[str], samplers: Sequence[Any], *,
                 fidelities: Sequence[int], min_points: int, budget: int, capped: bool = True,
                 constraints: Any = None, unstick_after: int | None = None, seed: int = 0):
        import optuna

        super().__init__(space, metrics, modes, samplers[0], budget=budget, capped=capped, constraints=constraints,
                         unstick_after=unstick_after, seed=seed)
        directions = [d for d in self.study.directions]
        self.fidelities = sorted(int(f) for f in fidelities)
        if len(samplers) != len(self.fidelities) + 1:
            raise ValueError(f"RungModelCore: {len(samplers)} samplers for {len(self.fidelities)} rungs + the full study")
        self.rung_studies = {f: optuna.create_study(directions=directions, sampler=s)
                             for f, s in zip(self.fidelities, samplers[1:])}
        self.min_points = int(min_points)
        self.configs: dict[str, dict[str, Any]] = {}  # running proposal -> its configuration
        self.reached: dict[str, set[int]] = {}  # running proposal -> rungs it reported at
        self.from_rung: dict[str, tuple[int, Any]] = {}  # proposal asked from a rung's study -> (rung, trial)
        self.asked_from: dict[int, int] = {}  # fidelity (0: the full study) -> proposals sampled from it

    def model_fidelity(self) -> int | None:
        """The rung whose study proposes next, or None for the full-fidelity study (it has enough
        points itself, or no rung has)."""
        import optuna

        complete = (optuna.trial.TrialState.COMPLETE,)
        if len(self.study.get_trials(deepcopy=False, states=complete)) >= self.min_points:
            return None
        for f in reversed(self.fidelities):
            if len(self.rung_studies[f].get_trials(deepcopy=False, states=complete)) >= self.min_points:
                return f
        return None

    def _next_study(self):
        f = self.model_fidelity()
        return self.study if f is None else self.rung_studies[f]

    def ask(self, key: str) -> dict[str, Any] | None:
        f = self.model_fidelity()
        if f is None:
            config = super().ask(key)
        else:
            if self.capped and self.asked >= self.budget:
                return None
            # RUNNING there until its result at rung f (constant liar); unstuck as the full study's asks
            trial, config = self._ask_from(self.rung_studies[f], key)
            self.from_rung[key] = (f, trial)
        if config is not None:
            self.configs[key], self.reached[key] = config, set()
            self.asked_from[f or 0] = self.asked_from.get(f or 0, 0) + 1
        return config

    def observe(self, key: str, result: Mapping[str, Any]) -> None:
        """A running proposal's report: at a rung, its objective values join that rung's study."""
        import optuna

        super().observe(key, result)
        epoch = result.get(EPOCH.name)
        if key not in self.configs or not isinstance(epoch, (int, float)) or int(epoch) not in self.rung_studies:
            return
        f = int(epoch)
        if f in self.reached[key]:
            return
        self.reached[key].add(f)
        values = self._values(result)
        asked = self.from_rung.get(key)
        if asked is not None and asked[0] == f:
            del self.from_rung[key]
            self._set_constraints(asked[1], result)
            self.rung_studies[f].tell(asked[1], values, state=None if values else optuna.trial.TrialState.FAIL)
        elif values is not None:
            self._add(self.rung_studies[f], self.configs[key], values, result, optuna.trial.TrialState.COMPLETE)

    def tell(self, key: str, result: Mapping[str, Any] | None, *, stopped: bool = False) -> bool:
        import optuna

        config = self.configs.pop(key, None)
        self.reached.pop(key, None)
        asked = self.from_rung.pop(key, None)
        if asked is not None:  # ended before the rung it was proposed from: nothing to learn there
            self.rung_studies[asked[0]].tell(asked[1], state=optuna.trial.TrialState.FAIL)
        if key in self.pending or config is None:  # proposed by the full study (or unknown)
            return super().tell(key, result, stopped=stopped)
        self.observed.pop(key, None)
        self._told(key, result)
        if result is None:
            if stopped:  # as OptunaCore tells a stopped trial: pruned (TPE's "bad" group)
                self._add(self.study, config, None, None, optuna.trial.TrialState.PRUNED)
            return False
        values = self._values(result)
        if values is None:
            return False
        self._add(self.study, config, values, result, optuna.trial.TrialState.COMPLETE)
        return True

    def _values(self, result: Mapping[str, Any] | None) -> list[float] | None:
        values = [result.get(m) for m in self.metrics] if result else None
        if values is None or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return None
        return [float(v) for v in values]

    def _set_constraints(self, trial, result: Mapping[str, Any]) -> None:
        if self.constraints is not None:
            for name, v in zip(self.constraints.metrics, self.constraints.violations(result)):
                trial.set_constraint(name, v)

    def _add(self, study, config: Mapping[str, Any], values, result, state) -> None:
        import optuna

        from gatesearch.spaces import distributions

        dists = distributions(self.space, dict(config))
        constraints = (dict(zip(self.constraints.metrics, self.constraints.violations(result)))
                       if self.constraints is not None and result is not None else None)
        study.add_trial(optuna.trial.create_trial(params={n: config[n] for n in dists}, distributions=dists,
                                                  values=values, state=state, constraints=constraints))
