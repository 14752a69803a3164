"""Check a space file against its objective's schema before anything runs."""

from __future__ import annotations

import copy
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatesearch._hints import did_you_mean
from gatesearch.objectives import Objective, get_objective
from gatesearch.objectives.base import UserImportError
from gatesearch.objectives.function import MAX_DEFAULT_COLUMNS, FunctionObjective
from gatesearch.objectives.plugins import import_plugins
from gatesearch.search.config.constraints import from_space_file as constraints_of
from gatesearch.search.config.resources import from_space_file
from gatesearch.search.config.settings import SearchSettings
from gatesearch.spaces import Categorical, Fixed, Float, Int, SpaceFile, trial_configuration


def validate_space_file(sf: SpaceFile) -> tuple[Objective, SearchSettings]:
    """The objective and settings of ``sf``, every part of it checked (:func:`checked`; a search
    makes one :class:`~gatesearch.search.config.plan.SearchPlan` of it instead)."""
    done = checked(sf)
    return done.objective, done.settings


@dataclass(frozen=True)
class Checked:
    """What checking a space file found: its objective, settings (as the file says), outcome
    constraints (empty without ``constraints:``) and per-trial resources (None without ``resources:``)."""

    objective: Objective
    settings: SearchSettings
    constraints: Any
    resources: Any


def checked(sf: SpaceFile) -> Checked:
    """Resolve the objective and settings and check every parameter. Nothing outside the returned
    value changes (no registry is written; a user's module becomes importable: :func:`user_paths`).

    The space's ``plugins:`` are imported first (after :func:`user_paths`), so the schema
    checks see what they register (e.g. a user's gate among the ``gate`` choices).

    Raises:
        SpaceError: naming file, line, field and the fix, for: a plugin that cannot be imported
            (at its ``plugins:`` entry), an unknown objective,
            unknown parameter names (with a did-you-mean), values outside what the
            objective accepts (e.g. an unknown gate), wrong types, ``a <= b``
            constraints that some configuration of the space would violate (e.g.
            k > n_experts), bad search settings, and ``constraints:`` naming a metric the
            objective does not report (did-you-mean) or with a bad bound.
    """
    user_paths(sf)
    for i, module in enumerate(sf.plugins):
        try:
            import_plugins([module])
        except UserImportError as e:  # the user's module: what went wrong there and where, at its entry
            raise sf.error(("plugins", i), e.message, e.fix) from None
    searched = [n for n, p in sf.space.params.items() if not isinstance(p, Fixed)]
    try:
        if sf.metrics and ":" in sf.objective:  # a plain training function, its metrics declared in the file
            objective = FunctionObjective(sf.objective, sf.metrics, [*sf.fixed, *sf.space.params], searched)
        else:
            objective = get_objective(sf.objective)
    except UserImportError as e:  # the user's module: what went wrong there and where, at the objective's line
        raise sf.error(("objective",), e.message, e.fix) from None
    except ValueError as e:  # a training function's problem says its own fix
        raise sf.error(("objective",), str(e), "" if sf.metrics else
                       "use a registered objective name, or 'package.module:attr' for your own") from None
    if sf.metrics and ":" not in sf.objective:  # a registered objective, optimised for metrics the file picks
        objective = _chosen_metrics(sf, objective)
    if not objective.front_columns:
        # a user objective that names no columns: show what was searched (front tables, run names),
        # on a copy for this space file (the registered instance stays as it is)
        objective = copy.copy(objective)
        objective.front_columns = tuple(searched[:MAX_DEFAULT_COLUMNS])
    try:
        settings = SearchSettings.from_mapping(sf.search)
    except ValueError as e:
        key = str(e).split(":", 1)[0]
        raise sf.error(("search", key), str(e).split(":", 1)[1].strip(), "see the search settings in docs/space-files.md (or docs/reference/settings.md)") from None
    _check_reference_point(sf, objective, settings)
    _check_scheduler(sf, objective, settings)
    resources = from_space_file(sf, settings.cpus_per_trial, settings.gpus_per_trial)  # errors at their line
    constraints = constraints_of(sf, objective)  # names the objective reports (errors at their line)
    rules = objective.schema.rules

    def rule_for(path: tuple, name: str):
        if name not in rules:
            raise sf.error(path, f"unknown parameter{objective.schema.suggest(name)}",
                           f"known parameters of {objective.name}: {sorted(rules)}")
        return rules[name]

    def check(path: tuple, name: str, value: Any) -> None:
        problem = rules[name].problem(value)
        if problem is not None:
            raise sf.error(path, problem, f"{name} is: {rules[name].doc}")

    for name, value in sf.fixed.items():
        rule_for(("fixed", name), name)
        check(("fixed", name), name, value)
    for name, p in sf.space.params.items():
        path = ("params", name)
        rule = rule_for(path, name)
        if isinstance(p, Categorical):
            for i, choice in enumerate(p.choices):
                check(path + ("choices", i), name, choice)
        elif isinstance(p, Fixed):
            check(path, name, p.value)
        elif rule.kind != "any":
            if rule.kind not in ("int", "float"):
                raise sf.error(path + ("type",), f"{name} takes {rule.kind} values, not a numeric range",
                               "use type: categorical with choices" if rule.kind == "str" else "use type: bool")
            if rule.kind == "int" and isinstance(p, Float):
                raise sf.error(path + ("type",), f"{name} is an integer parameter", "use type: int")
            for key, v in (("low", p.low), ("high", p.high)):
                check(path + (key,), name, int(v) if rule.kind == "int" else float(v))
    _check_constraints(sf, objective)
    _check_relations(sf)
    _check_inert(sf, objective)
    if settings.searcher == "nevergrad":
        import nevergrad as ng

        if settings.nevergrad_optimizer not in ng.optimizers.registry:
            raise sf.error(("search", "nevergrad_optimizer"), f"unknown Nevergrad optimizer "
                           f"{settings.nevergrad_optimizer!r}"
                           f"{did_you_mean(settings.nevergrad_optimizer, ng.optimizers.registry)}",
                           "use a name of nevergrad.optimizers.registry, e.g. NGOpt, DE, TwoPointsDE")
    return Checked(objective, settings, constraints, resources)


def _chosen_metrics(sf: SpaceFile, objective: Objective) -> Objective:
    """``metrics:`` with a registered objective: optimise these of the metrics it reports (e.g.
    accuracy, MACs and measured latency: a three-objective search), on a copy of the objective."""
    from gatesearch.objectives.metrics import METRICS, Metric
    from gatesearch.search.config.constraints import known_metrics

    names, prefixes, strict = known_metrics(objective)
    for name in sf.metrics:
        if strict and name not in names and not any(name.startswith(p) for p in prefixes):
            raise sf.error(("metrics", name), f"{objective.name} does not report {name!r}"
                           f"{did_you_mean(name, names)}", f"choose among what it reports: {names}")
    chosen = copy.copy(objective)
    chosen.objectives = tuple(Metric(name, mode, METRICS[name].description if name in METRICS else name)
                              for name, mode in sf.metrics.items())
    return chosen


def user_paths(sf: SpaceFile) -> None:
    """Make a user's module beside the space file (or in the working directory) importable, here
    and in the Ray workers this process starts (they inherit ``PYTHONPATH``)."""
    dirs = [str(Path(sf.path).resolve().parent)] if Path(sf.path).is_file() else []
    dirs.append(os.getcwd())
    for d in reversed(dirs):
        if d not in sys.path:
            sys.path.insert(0, d)
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([*current, *(d for d in dirs if d not in current)])


#: configurations drawn to find keys that no configuration of a space reads
INERT_DRAWS = 256


def _check_inert(sf: SpaceFile, objective: Objective) -> None:
    """Reject a searched or fixed key that has no effect in any configuration the space can
    produce (e.g. ``exit_threshold`` for the threshold baseline, ``tau_max`` without the dts
    gate): drawn from the space, resolved, and asked which keys are active."""
    keys = [*sf.fixed, *sf.space.params]
    active: set[str] = set()
    rng = random.Random(0)
    for _ in range(INERT_DRAWS):
        try:
            full = objective.resolve(trial_configuration(sf.fixed, sf.space.sample(rng)))
        except ValueError:
            continue
        active.update(objective.active(full))
        if active.issuperset(keys):
            return
    for key in keys:
        if key not in active:
            where = ("fixed", key) if key in sf.fixed else ("params", key)
            raise sf.error(where, f"{key} has no effect here: {objective.why_inert(key)}",
                           f"remove {key}, or search what reads it")


def _check_relations(sf: SpaceFile) -> None:
    """The relations can be met: a configuration that meets them all is found by drawing."""
    if not sf.space.relations:
        return
    try:
        sf.space.sample(random.Random(0))
    except ValueError as e:
        raise sf.error(("relations",) if ("relations",) in sf.lines else ("params",), str(e),
                       "loosen a relation, or widen the ranges it compares") from None


def _check_constraints(sf: SpaceFile, objective: Objective) -> None:
    """Every ``a <= b`` must hold for every configuration the space can produce."""

    def extent(name: str) -> tuple[Any, Any, tuple]:
        if name in sf.space.params:
            lo, hi = sf.space.params[name].bounds()
            return lo, hi, ("params", name)
        if name in sf.fixed:
            return sf.fixed[name], sf.fixed[name], ("fixed", name)
        v = objective.defaults.get(name)
        return v, v, ("params", name)

    for a, b in objective.schema.le_constraints:
        if any(r.is_at_most(a, b) for r in sf.space.relations):
            continue  # the space says so itself (k: {high: n_experts}): every proposal meets it
        _, a_hi, a_path = extent(a)
        b_lo, _, b_path = extent(b)
        if a_hi is None or b_lo is None:
            continue
        if a_hi > b_lo:
            where = "the default" if a_path[-1] not in sf.space.params and a_path[-1] not in sf.fixed else "up to"
            raise sf.error(a_path + (("high",) if isinstance(sf.space.params.get(a), (Int, Float)) else ()),
                           f"{a} can be {a_hi} ({where}) but {b} can be as low as {b_lo}: "
                           f"{a} <= {b} must hold for every configuration",
                           f"set the largest {a} to at most {b_lo}, or raise the smallest {b} to at least {a_hi}, or "
                           f"let the bound follow {b}: {a}: {{..., high: {b}}}")


def max_epochs(sf: SpaceFile, objective: Objective) -> int:
    """The full per-trial budget in epochs: fixed, the searched maximum, or the default."""
    if "epochs" in sf.fixed:
        return int(sf.fixed["epochs"])
    p = sf.space.params.get("epochs")
    if p is not None:
        lo, hi = p.bounds()
        if hi is not None:
            return int(hi)
    return int(objective.defaults.get("epochs", 1))


def _check_scheduler(sf: SpaceFile, objective: Objective, settings: SearchSettings) -> None:
    """The chosen scheduler's own checks against the trial budget (MO-ASHA: a rung below the full
    budget, no more brackets than rungs + 1), each at its setting's line."""
    from gatesearch.search.schedulers.registry import SCHEDULERS

    check = SCHEDULERS[settings.scheduler].check
    for key, problem, fix in (check(settings, max_epochs(sf, objective)) if check is not None else ()):
        raise sf.error(("search", key), problem, fix)


def _check_reference_point(sf: SpaceFile, objective: Objective, settings: SearchSettings) -> None:
    """``search: {reference_point: ...}`` names exactly the objective's optimised metrics."""
    if settings.reference_point is None:
        return
    names = [m.name for m in objective.objectives]
    for name in settings.reference_point:
        if name not in names:
            raise sf.error(("search", "reference_point", name),
                           f"{name} is not an objective of {objective.name}{did_you_mean(name, names)}",
                           f"give a value for each of {names}")
    missing = [n for n in names if n not in settings.reference_point]
    if missing:
        raise sf.error(("search", "reference_point"), f"no value for {', '.join(missing)}",
                       f"give a value for each of {names} (the hypervolume box needs every objective)")
