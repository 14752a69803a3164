"""Compile a :class:`Space` to a Nevergrad parametrization, conditionals included.

A categorical parameter that other parameters depend on becomes a ``Choice`` over one
``Dict`` per value, each holding that value and the sub-space it activates (the
per-branch encoding Nevergrad needs for conditional spaces). Parameters with more
than one condition stay at top level and are dropped on decoding when inactive, so
a decoded configuration always satisfies :meth:`Space.is_active`.
"""

from __future__ import annotations

from typing import Any

import nevergrad as ng

from gatesearch.spaces.params import Categorical, Fixed, Float, Int
from gatesearch.spaces.space import Space

VALUE = "__value__"


def _leaf(p):
    if isinstance(p, Float):
        if p.low == p.high:
            return p.low
        return ng.p.Log(lower=p.low, upper=p.high) if p.log else ng.p.Scalar(lower=p.low, upper=p.high)
    if isinstance(p, Int):
        if p.low == p.high:
            return p.low
        # ±0.5 margins make both inclusive ends as likely as any inner integer after rounding.
        if p.log:
            return ng.p.Log(lower=max(p.low - 0.49, 0.51), upper=p.high + 0.49)
        return ng.p.Scalar(lower=p.low - 0.49, upper=p.high + 0.49)
    if isinstance(p, Categorical):
        return ng.p.Choice(list(p.choices))
    if isinstance(p, Fixed):
        return p.value
    raise TypeError(f"unsupported parameter type {type(p).__name__}")  # pragma: no cover


def _structure(space: Space) -> tuple[dict[str, list[str]], list[str]]:
    """(categorical -> the parameters nested in its branches, top-level parameters)."""
    children: dict[str, list[str]] = {}
    roots = []
    for name in space.order:
        when = space.params[name].when
        if len(when) == 1 and isinstance(space.params[when[0].parent], Categorical):
            children.setdefault(when[0].parent, []).append(name)
        else:
            roots.append(name)
    return children, roots


def to_parametrization(space: Space, seed: int | None = None) -> ng.p.Dict:
    """The ``ng.p.Dict`` for ``space``; ``seed`` fixes its random state."""
    children, roots = _structure(space)

    def build(names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n in names:
            p = space.params[n]
            if n in children and isinstance(p, Categorical):
                branches = []
                for v in p.choices:
                    active = [c for c in children[n] if v in space.params[c].when[0].values]
                    branches.append(ng.p.Dict(**{VALUE: v}, **build(active)))
                out[n] = ng.p.Choice(branches)
            else:
                out[n] = _leaf(p)
        return out

    param = ng.p.Dict(**build(roots))
    if seed is not None:
        param.random_state.seed(seed)
    return param


def decode(space: Space, value: dict[str, Any]) -> dict[str, Any]:
    """Flatten a parametrization value into a configuration of the active parameters."""
    flat: dict[str, Any] = {}

    def walk(d: dict[str, Any]) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and VALUE in v:
                flat[k] = v[VALUE]
                walk({kk: vv for kk, vv in v.items() if kk != VALUE})
            else:
                flat[k] = v

    walk(value)
    out: dict[str, Any] = {}
    for n in space.order:
        if n in flat and space.is_active(n, out):
            p = space.params[n]
            v = flat[n]
            if isinstance(p, Int):
                v = min(p.high, max(p.low, int(round(float(v)))))
            elif isinstance(p, Float):
                v = min(p.high, max(p.low, float(v)))
            out[n] = v
    return {n: out[n] for n in space.params if n in out}


def encode(space: Space, config: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """The parametrization value of a configuration of ``space`` (the inverse of :func:`decode`):
    the branch of each categorical with nested parameters is the chosen value's; an inactive
    top-level parameter keeps ``template``'s value (a current value of the parametrization)."""
    children, roots = _structure(space)

    def build(names: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for n in names:
            if n in children and isinstance(space.params[n], Categorical) and n in config:
                active = [c for c in children[n] if config[n] in space.params[c].when[0].values]
                out[n] = {VALUE: config[n], **build(active)}
            else:
                out[n] = config[n] if n in config else template.get(n)
        return out

    return build(roots)
