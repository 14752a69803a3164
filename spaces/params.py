"""Parameter types of a search space. Bounds are inclusive on every backend."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    """Active only when parameter ``parent`` takes one of ``values``."""

    parent: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Float:
    """Real in [low, high]; ``log`` samples uniformly in log space (needs low > 0)."""

    low: float
    high: float
    log: bool = False
    when: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError("low and high must be finite numbers")
        if self.low > self.high:
            raise ValueError(f"low={self.low} > high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={self.low}")

    def sample(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def bounds(self) -> tuple[float, float]:
        return self.low, self.high


@dataclass(frozen=True)
class Int:
    """Integer in [low, high] (both inclusive); ``log`` needs low >= 1."""

    low: int
    high: int
    log: bool = False
    when: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low={self.low} > high={self.high}")
        if self.log and self.low < 1:
            raise ValueError(f"log scale needs low >= 1, got low={self.low}")

    def sample(self, rng: random.Random) -> int:
        if self.log:
            v = math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1)))
            return min(self.high, max(self.low, int(math.floor(v))))
        return rng.randint(self.low, self.high)

    def bounds(self) -> tuple[int, int]:
        return self.low, self.high


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (str, int, float or bool; at least one, no duplicates)."""

    choices: tuple[Any, ...]
    when: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError("choices must not be empty")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise ValueError(f"choices contain duplicates: {list(self.choices)}")
        for c in self.choices:
            if not isinstance(c, (str, int, float, bool)):
                raise ValueError(f"choice {c!r} is a {type(c).__name__}; only str, int, float, bool are allowed")

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.choices)

    def bounds(self) -> tuple[Any, Any]:
        nums = [c for c in self.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        return (min(nums), max(nums)) if len(nums) == len(self.choices) else (None, None)


@dataclass(frozen=True)
class Fixed:
    """A constant (still conditional when ``when`` is set)."""

    value: Any
    when: tuple[Condition, ...] = ()

    def sample(self, rng: random.Random) -> Any:
        return self.value

    def bounds(self) -> tuple[Any, Any]:
        v = self.value
        return (v, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (None, None)


Param = Float | Int | Categorical | Fixed
