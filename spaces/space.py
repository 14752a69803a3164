"""The declarative search space: named parameters, some conditional on others, some related."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping

from gatesearch.spaces.params import Categorical, Fixed, Float, Int, Param
from gatesearch.spaces.relations import Relation, narrowed

#: draws :meth:`Space.sample` makes before it says the relations cannot be met
MAX_DRAWS = 1000


class Infeasible(ValueError):
    """No value of a parameter can meet the space's relations given the others (or a drawn
    configuration breaks one): the caller draws again."""


@dataclass(frozen=True)
class Space:
    """An ordered mapping name -> parameter; parents (of a condition, and of a relation that
    bounds a parameter: :mod:`gatesearch.spaces.relations`) come before their children.

    Raises ``ValueError`` on a condition naming an unknown parameter, on a value the
    parent cannot take, or on cyclic conditions or bounds.
    """

    params: Mapping[str, Param]
    name: str = ""
    relations: tuple[Relation, ...] = ()
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
            for parent in self.bound_parents(n):
                visit(parent, stack + [n])
            state[n] = 2
            order.append(n)

        for n in self.params:
            visit(n, [])
        return tuple(order)

    def bound_parents(self, name: str) -> tuple[str, ...]:
        """The parameters whose values bound ``name`` through a relation (``k <= n_experts``:
        ``n_experts``; :attr:`~gatesearch.spaces.relations.Relation.bounded`)."""
        out: list[str] = []
        for r in self.relations:
            if r.bounded == name and isinstance(self.params.get(name), (Int, Float)):
                out.extend(p for p in r.names if p != name and p in self.params and p not in out)
        return tuple(out)

    def range_of(self, name: str, values: Mapping[str, Any]) -> tuple[Any, Any]:
        """``name``'s (Int or Float) range given the ``values`` chosen so far, narrowed by the
        relations that bound it; :class:`Infeasible` when nothing is left."""
        p = self.params[name]
        low, high = narrowed(p.low, p.high, self.relations, name, values, isinstance(p, Int))
        if low > high:
            raise Infeasible(f"{name}: no value in [{p.low}, {p.high}] meets "
                             + " and ".join(r.text for r in self.relations if name in r.names))
        return low, high

    def broken(self, values: Mapping[str, Any]) -> Relation | None:
        """The first relation ``values`` (a configuration) breaks, or None."""
        return next((r for r in self.relations if not r.holds(values)), None)

    @property
    def order(self) -> tuple[str, ...]:
        """Parameter names with every parent before its children."""
        return self._order

    def is_active(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether ``name`` is active given the (already decided) ``values`` of its parents."""
        return all(c.parent in values and values[c.parent] in c.values for c in self.params[name].when)

    def sample(self, rng: random.Random | int = 0) -> dict[str, Any]:
        """One configuration drawn uniformly (in each parameter's scale, within the range its
        relations leave); inactive ones omitted; drawn again while it breaks a relation
        (``ValueError`` after :data:`MAX_DRAWS` draws)."""
        rng = random.Random(rng) if isinstance(rng, int) else rng
        for _ in range(MAX_DRAWS if self.relations else 1):
            out: dict[str, Any] = {}
            try:
                for n in self.order:
                    if self.is_active(n, out):
                        p = self.params[n]
                        if isinstance(p, (Int, Float)) and self.relations:
                            low, high = self.range_of(n, out)
                            p = type(p)(low, high, p.log and low > 0)
                        out[n] = p.sample(rng)
            except Infeasible:
                continue
            if self.broken(out) is None:
                return {n: out[n] for n in self.params if n in out}
        raise ValueError(f"no configuration met the relations ({'; '.join(r.text for r in self.relations)}) in "
                         f"{MAX_DRAWS} draws: are they possible within the parameters' ranges?")
