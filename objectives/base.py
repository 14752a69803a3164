"""The objective contract and its registry.

An objective turns one flat configuration (what a searcher proposes) into a trained
model and its metrics. It declares the metrics it optimises (name + direction, from
:mod:`objectives.metrics`), a :class:`ParamSchema` of the keys it accepts, and
defaults for every key a space does not set.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from objectives.metrics import Metric
from objectives.schema import ParamSchema

Report = Callable[[Mapping[str, float]], None]


class Objective(ABC):
    """Train-and-evaluate one configuration."""

    name: str
    #: the optimised metrics (the Pareto axes), in order
    objectives: tuple[Metric, ...]
    schema: ParamSchema
    defaults: Mapping[str, Any]

    def resolve(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``config``, validated against the schema."""
        full = {**self.defaults, **config}
        self.schema.validate(full)
        self.check(full)
        return full

    def check(self, config: Mapping[str, Any]) -> None:
        """Extra cross-field checks on a resolved configuration (override as needed)."""

    def derived(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Parameters implied by ``config`` worth logging (e.g. COMET tree depth)."""
        return {}

    @abstractmethod
    def run(self, config: Mapping[str, Any], *, report: Report | None = None, device: str = "cpu") -> dict[str, float]:
        """Train and evaluate; call ``report`` once per epoch; return final metrics."""


OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Add ``objective`` to the registry under its ``name``; duplicates are an error."""
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r} is already registered")
    OBJECTIVES[objective.name] = objective
    return objective


def get_objective(name: str) -> Objective:
    """Look up a registered objective, with a did-you-mean on typos."""
    if name not in OBJECTIVES:
        hint = difflib.get_close_matches(name, list(OBJECTIVES), n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise ValueError(f"unknown objective {name!r}{extra}; registered: {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]
