"""Which searched parameters mattered, per objective: PED-ANOVA (Watanabe et al., IJCAI 2023) over a
search's finished trials, as Optuna computes it (``optuna.importance.PedAnovaImportanceEvaluator``).

PED-ANOVA measures, for each parameter, how differently it is distributed in the best 10 % of the
trials than in all of them (a Pearson divergence between the two densities): a parameter the good
trials share a narrow range of is important. It needs no surrogate model, so it is cheap and
deterministic. Computed once per objective (its direction respected: PED-ANOVA ranks lower values as
better, so a maximised objective is negated), and once for reaching the Pareto front (Optuna's
multi-objective target: the top quantile by non-domination rank). Importances are normalised to sum
to 1 per target. A parameter that is conditional (absent from some trials) is judged on the trials
that have it.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

#: the target of reaching the front (beside one per objective)
FRONT_TARGET = "pareto front"
#: fewer finished trials than this: no importances (PED-ANOVA's top 10 % would be one trial)
MIN_TRIALS = 8


def searched_params(trials: Sequence[Any]) -> list[str]:
    """The parameters that take at least two values over ``trials`` (a fixed one tells nothing)."""
    values: dict[str, set] = {}
    for t in trials:
        for k, v in t.params.items():
            values.setdefault(k, set()).add(repr(v))
    return sorted(k for k, vs in values.items() if len(vs) > 1)


def importances(study: Any, names: Sequence[str], modes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per objective of ``names`` (and :data:`FRONT_TARGET` with two or more), each searched
    parameter's importance over the COMPLETE trials of the Optuna ``study`` (the search's mirror:
    finished trials, their values in the objectives' order), largest first. Empty with fewer than
    :data:`MIN_TRIALS` trials or no parameter that varied."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    params = searched_params(trials)
    if len(trials) < MIN_TRIALS or not params:
        return {}
    out: dict[str, dict[str, float]] = {}
    with warnings.catch_warnings():  # "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")  # directions: handled
        targets = [(name, (lambda t, i=i, s=(-1.0 if mode == "max" else 1.0): s * t.values[i]))
                   for i, (name, mode) in enumerate(zip(names, modes))]
        if len(names) > 1:
            targets.append((FRONT_TARGET, None))
        for name, target in targets:
            found = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator(), params=params,
                                          target=target, normalize=True)
            out[name] = {k: float(v) for k, v in sorted(found.items(), key=lambda kv: -kv[1])}
    return out
