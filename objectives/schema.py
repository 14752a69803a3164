"""What configuration keys an objective accepts: types, allowed values, bounds and
cross-field constraints. Search spaces are checked against it before any trial runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gatesearch._hints import did_you_mean


@dataclass(frozen=True)
class ParamRule:
    """One accepted configuration key.

    Attributes:
        kind: ``int``, ``float``, ``bool``, ``str``, or ``any`` (a user function's key: any value).
        choices: allowed values for ``str`` keys (None = any).
        low, high: inclusive numeric bounds (None = unbounded).
        doc: one line shown in errors and ``gatesearch space validate``.
    """

    kind: str
    doc: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (without the key's name), or None if it is acceptable."""
        if self.kind == "any":
            return None
        py = {"int": int, "float": (int, float), "bool": bool, "str": str}[self.kind]
        if isinstance(value, bool) and self.kind in ("int", "float"):
            return f"expected {self.kind}, got bool {value!r}"
        if not isinstance(value, py):
            return f"expected {self.kind}, got {type(value).__name__} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"unknown value {value!r}{did_you_mean(value, self.choices)}; allowed: {list(self.choices)}"
        if self.low is not None and value < self.low:
            return f"{value!r} is below the minimum {self.low}"
        if self.high is not None and value > self.high:
            return f"{value!r} is above the maximum {self.high}"
        return None

    def check(self, name: str, value: Any) -> None:
        """Raise ``ValueError`` naming ``name`` if ``value`` is not acceptable."""
        problem = self.problem(value)
        if problem is not None:
            raise ValueError(f"{name}: {problem}")


@dataclass(frozen=True)
class ParamSchema:
    """All keys of an objective plus ``a <= b`` constraints between numeric keys."""

    rules: Mapping[str, ParamRule]
    le_constraints: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def suggest(self, name: str) -> str:
        return did_you_mean(name, self.rules)

    def validate(self, config: Mapping[str, Any]) -> None:
        """Check a complete configuration; raise ``ValueError`` naming the first bad key."""
        for name, value in config.items():
            if name not in self.rules:
                raise ValueError(f"{name}: unknown parameter{self.suggest(name)}; known: {sorted(self.rules)}")
            self.rules[name].check(name, value)
        for a, b in self.le_constraints:
            if a in config and b in config and config[a] > config[b]:
                raise ValueError(f"{a}: {a}={config[a]} must be <= {b}={config[b]}")
