"""Outcome constraints: what makes a trial infeasible, whatever its objectives.

A space file's top-level ``constraints:`` bounds any metric a trial reports::

    constraints:
      macs_per_sample: {max: 20000}     # a compute cap
      dropped_fraction: {max: 0.05}     # the LM's capacity drops
      accuracy: {min: 0.8}              # a floor on an objective

A trial is *feasible* when every bounded metric it reported at its end lies inside its bounds. An
infeasible trial still finishes and is logged (its child run is tagged :data:`TAG_INFEASIBLE`
with the reason), but it is kept off the Pareto front, out of the hypervolume and out of the
inferred reference point; the figures draw it apart, the progress display and the run description
count it, and MO-ASHA ranks it after every feasible trial at a rung.

The searchers are told too: each bound becomes a *violation* (Optuna's convention: ``<= 0``
satisfied, ``> 0`` violated), relative to the bound so constraints of different scales weigh alike
(:meth:`Constraints.violations`). Optuna's TPE, NSGA-II and GP samplers and BoTorch read them
from each trial (``Trial.set_constraint``, Optuna 5's successor of ``constraints_func``; BoTorch
as outcome constraints), Nevergrad as ``constraint_violation``.
A searcher without constraint support (``random``: its proposals never depend on results; a
user's searcher registered without ``constrained=True``) is told results as they are; the search
still keeps infeasible trials off the front.

Names are checked against the metrics the objective reports (:attr:`Objective.reports`), with a
did-you-mean; a plain training function's metrics are not known in advance, so a name there is
accepted unless it is a near miss of a known one, and a trial that does not report it is
infeasible (the reason says so).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping

from gatesearch._hints import did_you_mean

#: the tag on an infeasible trial's child run: why (e.g. "macs_per_sample 25,100 > max 20,000")
TAG_INFEASIBLE = "gatesearch.infeasible"
#: the violation of a bound whose metric was not reported (or is not a finite number)
MISSING = 1e6


@dataclass(frozen=True)
class Bound:
    """``low <= metric <= high`` (either side may be None)."""

    metric: str
    low: float | None = None
    high: float | None = None

    def violation(self, value: Any) -> float:
        """How far ``value`` is outside the bound, relative to the bound's magnitude (<= 0: inside)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            return MISSING
        value = float(value)
        worst = -math.inf
        for limit, sign in ((self.high, 1.0), (self.low, -1.0)):
            if limit is not None:
                worst = max(worst, sign * (value - limit) / max(abs(limit), 1e-12))
        return worst

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.low:,.6g} <= {self.metric} <= {self.high:,.6g}"
        return f"{self.metric} >= {self.low:,.6g}" if self.low is not None else f"{self.metric} <= {self.high:,.6g}"


@dataclass(frozen=True)
class Constraints:
    """The search's bounds (empty: every trial is feasible). Picklable; JSON round-trips."""

    bounds: tuple[Bound, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.bounds)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(b.metric for b in self.bounds)

    def violations(self, result: Mapping[str, Any]) -> list[float]:
        """One violation per bound (Optuna's ``constraints_func`` convention: ``<= 0`` satisfied)."""
        return [b.violation(result.get(b.metric)) for b in self.bounds]

    def feasible(self, result: Mapping[str, Any]) -> bool:
        return all(v <= 0 for v in self.violations(result))

    def why(self, result: Mapping[str, Any]) -> str:
        """The violated bounds of ``result``, e.g. ``macs_per_sample 25,100 > max 20,000`` ("" if feasible)."""
        out = []
        for b in self.bounds:
            value = result.get(b.metric)
            if b.violation(value) <= 0:
                continue
            if b.violation(value) == MISSING:
                out.append(f"{b.metric} not reported")
            elif b.high is not None and value > b.high:
                out.append(f"{b.metric} {value:,.6g} > max {b.high:,.6g}")
            else:
                out.append(f"{b.metric} {value:,.6g} < min {b.low:,.6g}")
        return "; ".join(out)

    def describe(self) -> str:
        return ", ".join(b.describe() for b in self.bounds)

    def edge(self, metric: str, mode: str) -> float | None:
        """The bound on the worse side of an objective (``max`` of a minimised one, ``min`` of a
        maximised one): the feasible region's edge, every feasible value at least as good. None
        when no bound limits that side."""
        values = [b.high if mode == "min" else b.low for b in self.bounds if b.metric == metric]
        values = [v for v in values if v is not None]
        if not values:
            return None
        return min(values) if mode == "min" else max(values)

    def to_json(self) -> str:
        return json.dumps({b.metric: {k: v for k, v in (("min", b.low), ("max", b.high)) if v is not None}
                           for b in self.bounds})

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Mapping[str, float]]) -> "Constraints":
        return cls(tuple(Bound(str(m), _num(r.get("min")), _num(r.get("max"))) for m, r in raw.items()))


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


#: what every trial reports for the search's own bookkeeping (accepted, not offered in hints)
BOOKKEEPING = ("epoch", "epochs_total", "resumed_from_epoch")


def known_metrics(objective) -> tuple[list[str], list[str], bool]:
    """(names, name prefixes, strict) an objective reports: its objectives, its declared
    :attr:`reports` (an entry ending in ``*`` is a family, e.g. ``exit_fraction_*``) and the
    per-trial bookkeeping every trial reports. ``strict``: whether the objective declares them
    (a plain training function does not)."""
    from gatesearch.objectives.metrics import EPOCH, EPOCHS_TOTAL, METRICS

    declared = tuple(getattr(objective, "reports", ()) or ())
    names = [m.name for m in objective.objectives] + [r for r in declared if not r.endswith("*")]
    names += [EPOCH.name, EPOCHS_TOTAL.name]
    prefixes = [r[:-1] for r in declared if r.endswith("*")]
    if not declared:
        names += [n for n in METRICS if n not in names]  # the names a user is likely to mean
    return list(dict.fromkeys(names)), prefixes, bool(declared)


def from_space_file(sf, objective) -> Constraints:
    """The space file's ``constraints:`` checked against ``objective``'s metrics (empty without
    one). Raises the space file's error at the offending line, with the fix."""
    raw = getattr(sf, "constraints", None)
    if raw is None:
        return Constraints()
    example = "write constraints: {macs_per_sample: {max: 20000}, accuracy: {min: 0.8}}"
    if not isinstance(raw, Mapping) or not raw:
        raise sf.error(("constraints",), f"expected a mapping metric -> {{min: ..., max: ...}}, got {raw!r}", example)
    names, prefixes, strict = known_metrics(objective)
    bounds = []
    for metric, rule in raw.items():
        metric = str(metric)
        path = ("constraints", metric)
        known = metric in names or any(metric.startswith(p) for p in prefixes)
        hint = did_you_mean(metric, names)
        if not known and (strict or hint):
            raise sf.error(path, f"{metric} is not a metric {objective.name} reports{hint}",
                           f"bound one of {sorted(n for n in names if n not in BOOKKEEPING)}"
                           + ("" if strict else " (or a metric your function reports)"))
        if not isinstance(rule, Mapping) or not rule:
            raise sf.error(path, f"expected {{min: <value>}} and/or {{max: <value>}}, got {rule!r}",
                           f"write {metric}: {{max: <value>}}")
        for key, value in rule.items():
            if key not in ("min", "max"):
                raise sf.error(path + (key,), f"unknown bound {key!r}{did_you_mean(key, ['min', 'max'])}",
                               "use min and/or max")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise sf.error(path + (key,), f"{key} must be a finite number, got {value!r}",
                               f"write {metric}: {{{key}: <number>}}")
        if "min" in rule and "max" in rule and rule["min"] > rule["max"]:
            raise sf.error(path, f"min {rule['min']} > max {rule['max']}: no value is feasible",
                           "swap them, or drop one")
        bounds.append(Bound(metric, _num(rule.get("min")), _num(rule.get("max"))))
    return Constraints(tuple(bounds))

