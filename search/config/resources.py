"""Ray resources per configuration: a large MoE takes a whole GPU, a small early-exit net a quarter.

A space file's top-level ``resources:`` says what one trial needs as a function of its configuration,
in one of two forms:

- a table over one searched parameter::

      resources:
        by: n_experts                          # a searched parameter
        gpus_per_trial: {8: 0.25, 16: 0.5, 64: 1}
        cpus_per_trial: {8: 1, 64: 2}          # optional (else search: cpus_per_trial)

  A categorical parameter needs a row per choice; for a numeric one a value takes the row of the
  smallest key at or above it (so the largest key must cover the parameter's ``high``);

- a function of the user's, ``resources: mymodule:trial_resources``, called with the trial's
  configuration (the searched parameters and the fixed ones) and returning
  ``{"cpus_per_trial": ..., "gpus_per_trial": ...}`` (either may be left out).

What a row or the function does not give comes from ``search: {cpus_per_trial, gpus_per_trial}``.
Ray-free: :mod:`gatesearch.search.ray` turns it into Ray's per-trial placement.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from gatesearch._hints import did_you_mean
from gatesearch.spaces import trial_configuration

KEYS = ("cpus_per_trial", "gpus_per_trial")
#: configurations drawn from the space to check a function's answers before the search starts
DRAWS = 256


@dataclass(frozen=True)
class TrialResources:
    """``config -> (cpus, gpus)`` for one search. Picklable (Ray keeps it with the experiment).

    Attributes:
        default: (cpus, gpus) of ``search:``, for what the table or the function leaves out.
        by, tables: the table form: the parameter and, per resource key, value -> amount.
        function: the function form: ``"module:attr"`` (imported where it is called).
        fixed: the space file's fixed values (passed to the function with the configuration).
    """

    default: tuple[float, float]
    by: str = ""
    tables: Mapping[str, Mapping[Any, float]] = field(default_factory=dict)
    function: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, config: Mapping[str, Any]) -> tuple[float, float]:
        """(cpus, gpus) for a trial of ``config``."""
        cpus, gpus = self.default
        if self.function:
            from gatesearch.objectives.base import import_attribute

            got = import_attribute(self.function, what="resources function")(trial_configuration(self.fixed, config))
            if not isinstance(got, Mapping) or set(got) - set(KEYS):
                raise ValueError(f"resources: {self.function} returned {got!r}; return a mapping with "
                                 f"{' and/or '.join(KEYS)}")
            cpus, gpus = got.get("cpus_per_trial", cpus), got.get("gpus_per_trial", gpus)
        elif self.by:
            value = config.get(self.by, self.fixed.get(self.by))
            cpus = self._row("cpus_per_trial", value, cpus)
            gpus = self._row("gpus_per_trial", value, gpus)
        return float(cpus), float(gpus)

    def _row(self, key: str, value: Any, default: float) -> float:
        table = self.tables.get(key)
        if not table:
            return default
        if value in table:
            return table[value]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            above = [k for k in table if isinstance(k, (int, float)) and k >= value]
            if above:
                return table[min(above)]
        raise ValueError(f"resources: no {key} row for {self.by} = {value!r} (rows: {sorted(table, key=str)})")


def from_space_file(sf, cpus: float, gpus: float) -> TrialResources | None:
    """The space file's ``resources:`` (None without one), checked against its space: the table
    names a searched parameter and covers every value it can take, amounts are numbers (cpus > 0,
    gpus >= 0), a function is importable. Raises the space file's error at the offending line."""
    raw = sf.resources
    if raw is None:
        return None
    if isinstance(raw, str):
        if ":" not in raw:
            raise sf.error(("resources",), f"{raw!r} is neither a table nor a function",
                           "write resources: {by: <parameter>, gpus_per_trial: {...}} or resources: module:function")
        from gatesearch.objectives.base import UserImportError, import_attribute

        try:
            fn = import_attribute(raw, what="resources function")
        except UserImportError as e:
            raise sf.error(("resources",), e.message, e.fix) from None
        except ValueError as e:
            raise sf.error(("resources",), str(e), "name a function module:attr that takes a configuration") from None
        if not callable(fn):
            raise sf.error(("resources",), f"{raw} is a {type(fn).__name__}, not a function",
                           "def trial_resources(config): return {'gpus_per_trial': ...}")
        return TrialResources(default=(cpus, gpus), function=raw, fixed=dict(sf.fixed))
    if not isinstance(raw, Mapping):
        raise sf.error(("resources",), f"expected a table or module:function, got {raw!r}",
                       "write resources: {by: <parameter>, gpus_per_trial: {value: gpus, ...}}")
    unknown = set(raw) - {"by", *KEYS}
    if unknown:
        key = sorted(unknown, key=str)[0]
        raise sf.error(("resources", key), f"unknown key {key!r}{did_you_mean(key, ['by', *KEYS])}",
                       f"use by and {' / '.join(KEYS)}")
    by = raw.get("by")
    searched = list(sf.space.params)
    if by not in searched:
        raise sf.error(("resources", "by"), f"{by!r} is not a searched parameter{did_you_mean(str(by), searched)}",
                       f"name one of {searched}")
    if not any(k in raw for k in KEYS):
        raise sf.error(("resources",), "no resources given", f"add {KEYS[1]}: {{value: gpus, ...}} (or {KEYS[0]})")
    param = sf.space.params[by]
    tables: dict[str, dict[Any, float]] = {}
    for key in KEYS:
        if key not in raw:
            continue
        table = raw[key]
        if not isinstance(table, Mapping) or not table:
            raise sf.error(("resources", key), f"expected a table value -> amount, got {table!r}",
                           f"write {key}: {{<{by} value>: <amount>, ...}}")
        for value, amount in table.items():
            low = 0.001 if key == "cpus_per_trial" else 0.0
            if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) \
                    or amount < low:
                raise sf.error(("resources", key, value), f"{amount!r} is not a valid amount",
                               f"a number >= {low:g} ({'CPUs' if low else 'GPUs; fractions allowed'})")
        tables[key] = {k: float(v) for k, v in table.items()}
    resources = TrialResources(default=(cpus, gpus), by=by, tables=tables, fixed=dict(sf.fixed))
    choices = getattr(param, "choices", None)
    for key, table in tables.items():
        if choices is not None:
            missing = [c for c in choices if c not in table]
            if missing:
                raise sf.error(("resources", key), f"no row for {by} = {', '.join(map(repr, missing))}",
                               f"give a row for every choice of {by}: {list(choices)}")
        else:
            high = param.bounds()[1]
            if not any(isinstance(k, (int, float)) and k >= high for k in table):
                raise sf.error(("resources", key), f"{by} can be {high} but the largest row is {max(table, key=str)}",
                               f"add a row {high}: <amount> (a value takes the row of the smallest key >= it)")
    return resources


def requirements(resources: TrialResources, sf) -> dict[tuple[float, float], Mapping[str, Any]]:
    """Every distinct (cpus, gpus) the search can ask for, each with a configuration that asks for
    it (drawn from the space: every table row is reached, a function is sampled)."""
    rng, found = random.Random(0), {}
    if resources.by:
        param = sf.space.params[resources.by]
        values = list(getattr(param, "choices", None) or
                      {v for table in resources.tables.values() for v in table} | {param.bounds()[0]})
        for v in values:
            found.setdefault(resources({resources.by: v}), {resources.by: v})
        return found
    for _ in range(DRAWS):
        config = sf.space.sample(rng)
        found.setdefault(resources(config), config)
    return found
