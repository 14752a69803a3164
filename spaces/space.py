"""The declarative search space: named parameters, some conditional on others."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from gatesearch.spaces.params import Categorical, Fixed, Param


@dataclass(frozen=True)
class Space:
    """An ordered mapping name -> parameter; parents come before their children.

    Raises ``ValueError`` on a condition naming an unknown parameter, on a value the
    parent cannot take, or on cyclic conditions.
    """

    params: Mapping[str, Param]
    name: str = ""
    _order: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        for pname, p in self.params.items():
            for cond in p.when:
                if cond.parent not in self.params:
                    raise ValueError(f"{pname}: condition on unknown parameter {cond.parent!r}")
                parent = self.params[cond.parent]
                allowed = parent.choices if isinstance(parent, Categorical) else (
                    (parent.value,) if isinstance(parent, Fixed) else None)
                if allowed is None:
                    raise ValueError(f"{pname}: condition parent {cond.parent!r} must be categorical or fixed")
                bad = [v for v in cond.values if v not in allowed]
                if bad:
                    raise ValueError(f"{pname}: condition values {bad} are not choices of {cond.parent!r} {list(allowed)}")
        object.__setattr__(self, "_order", self._topological())

    def _topological(self) -> tuple[str, ...]:
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(n: str, stack: list[str]) -> None:
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                cycle = " -> ".join(stack[stack.index(n):] + [n])
                raise ValueError(f"{n}: cyclic conditions ({cycle})")
            state[n] = 1
            for c in self.params[n].when:
                visit(c.parent, stack + [n])
            state[n] = 2
            order.append(n)

        for n in self.params:
            visit(n, [])
        return tuple(order)

    @property
    def order(self) -> tuple[str, ...]:
        """Parameter names with every parent before its children."""
        return self._order

    def is_active(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (already decided) ``values`` of its parents."""
        return all(c.parent in values and values[c.parent] in c.values for c in self.params[name].when)

    def sample(self, rng: random.Random | int = 0) -> dict[str, Any]:
        """One configuration drawn uniformly (in each parameter's scale); inactive ones omitted."""
        rng = random.Random(rng) if isinstance(rng, int) else rng
        out: dict[str, Any] = {}
        for n in self.order:
            if self.is_active(n, out):
                out[n] = self.params[n].sample(rng)
        return {n: out[n] for n in self.params if n in out}
