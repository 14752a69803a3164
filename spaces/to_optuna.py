"""Compile a :class:`Space` to Optuna's define-by-run API (conditionals included)."""

from __future__ import annotations

from typing import Any

from gatesearch.spaces.params import Categorical, Fixed, Float, Int
from gatesearch.spaces.space import Infeasible, Space


def suggest(trial, space: Space) -> dict[str, Any]:
    """Ask ``trial`` (an ``optuna.Trial``) for every active parameter of ``space``.

    Bounds are inclusive for both ``Int`` and ``Float``; a relation that bounds a parameter by
    others (``k <= n_experts``) narrows its range once they are chosen. Inactive parameters are not
    suggested at all, so samplers see a genuinely conditional space. Returns the fixed values
    (Optuna records only suggested ones). Raises :class:`~gatesearch.spaces.space.Infeasible` when
    the configuration breaks a relation (the caller tells the trial pruned and asks again).
    """
    values: dict[str, Any] = {}
    fixed: dict[str, Any] = {}
    for name in space.order:
        if not space.is_active(name, values):
            continue
        p = space.params[name]
        if isinstance(p, (Float, Int)) and space.relations:
            low, high = space.range_of(name, values)
            log = p.log and low > 0
            values[name] = (trial.suggest_float(name, low, high, log=log) if isinstance(p, Float)
                            else trial.suggest_int(name, int(low), int(high), log=log))
        elif isinstance(p, Float):
            values[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        elif isinstance(p, Int):
            values[name] = trial.suggest_int(name, p.low, p.high, log=p.log)
        elif isinstance(p, Categorical):
            values[name] = trial.suggest_categorical(name, list(p.choices))
        elif isinstance(p, Fixed):
            values[name] = fixed[name] = p.value
        else:  # pragma: no cover - exhaustive over Param
            raise TypeError(f"{name}: unsupported parameter type {type(p).__name__}")
    broken = space.broken(values)
    if broken is not None:
        raise Infeasible(f"breaks {broken.text}")
    return fixed


def distributions(space: Space, config: dict[str, Any]) -> dict[str, Any]:
    """Optuna's distribution of every searched parameter in ``config`` (a configuration of
    ``space``; fixed values are not parameters to Optuna): what ``optuna.trial.create_trial``
    needs to add an already evaluated configuration to a study."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for name in config:
        p = space.params[name]
        if isinstance(p, Float):
            out[name] = d.FloatDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, Int):
            out[name] = d.IntDistribution(p.low, p.high, log=p.log)
        elif isinstance(p, Categorical):
            out[name] = d.CategoricalDistribution(list(p.choices))
    return out
