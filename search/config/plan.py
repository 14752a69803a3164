"""One plan per search: the space file checked once, and everything the rest of a search reads from it.

``gatesearch run`` (and :func:`~gatesearch.search.lifecycle.runner.run_search`) makes a
:class:`SearchPlan` with :func:`plan_search`; ``resume`` and ``extend`` make one from the search's
own copy of its space file and its recorded settings (:meth:`SearchPlan.recorded`). What comes after
(the services check, the parent run, the Tuner, the sink, the progress display) takes the plan: the
space file is not validated, nor are its constraints and resources parsed, a second time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, Mapping

from gatesearch.objectives import Objective
from gatesearch.search.config.constraints import Constraints
from gatesearch.search.config.resources import TrialResources, from_space_file
from gatesearch.search.config.settings import SearchSettings
from gatesearch.search.config.validate import checked, max_epochs
from gatesearch.spaces import Fixed, Space, SpaceFile


@dataclass(frozen=True)
class SearchPlan:
    """A checked space file and what a search runs from it.

    Attributes:
        sf: the space file (its path, text, ``fixed`` values and ``space``).
        objective: the objective its trials train (a registered one, or the file's training function).
        settings: the ``search:`` settings with the overrides applied.
        constraints: the outcome constraints (empty without ``constraints:``).
        resources: Ray resources per configuration (None without ``resources:``: ``cpus_per_trial``
            and ``gpus_per_trial`` for every trial).
        max_epochs: a trial's full budget in epochs.
    """

    sf: SpaceFile
    objective: Objective
    settings: SearchSettings
    constraints: Constraints
    resources: TrialResources | None
    max_epochs: int

    @property
    def space(self) -> Space:
        return self.sf.space

    @property
    def fixed(self) -> Mapping[str, Any]:
        return self.sf.fixed

    @property
    def names(self) -> tuple[str, ...]:
        """The objectives' metric names, in order."""
        return tuple(m.name for m in self.objective.objectives)

    @property
    def modes(self) -> tuple[str, ...]:
        """Per objective, ``"max"`` or ``"min"``."""
        return tuple(m.mode for m in self.objective.objectives)

    def override(self, **changes: Any) -> "SearchPlan":
        """The plan with ``changes`` applied to its settings (None values ignored; an unknown name is a
        ``ValueError`` with a did-you-mean). A space without a searched parameter is a search of one
        trial; resources are parsed again only when the per-trial CPUs or GPUs changed."""
        settings = self.settings.override(**changes)
        if not any(not isinstance(p, Fixed) for p in self.sf.space.params.values()) and (
                settings.num_samples != 1 or settings.searcher != "random"):
            if settings.num_samples != 1:
                logging.getLogger(__name__).warning("%s: no searched parameter, running the fixed configuration once "
                                                    "(num_samples %d -> 1)", self.sf.path, settings.num_samples)
            settings = settings.override(num_samples=1, searcher="random")
        return self.with_settings(settings)

    def with_settings(self, settings: SearchSettings) -> "SearchPlan":
        """The plan with ``settings`` (a recorded search's, or an extension's larger budget)."""
        resources = self.resources
        if (settings.cpus_per_trial, settings.gpus_per_trial) != (self.settings.cpus_per_trial,
                                                                   self.settings.gpus_per_trial):
            resources = from_space_file(self.sf, settings.cpus_per_trial, settings.gpus_per_trial)
        return replace(self, settings=settings, resources=resources)

    @classmethod
    def recorded(cls, sf: SpaceFile, settings: Mapping[str, Any]) -> "SearchPlan":
        """The plan of a recorded search: its own copy of the space file, checked (its plugins and
        the user's module imported), with the settings it recorded."""
        return _plan(sf).with_settings(SearchSettings(**settings))


def _plan(sf: SpaceFile) -> SearchPlan:
    done = checked(sf)
    return SearchPlan(sf, done.objective, done.settings, done.constraints, done.resources,
                      max_epochs(sf, done.objective))


def plan_search(sf: SpaceFile, overrides: Mapping[str, Any] | None = None) -> SearchPlan:
    """Check ``sf`` (every mistake a ``SpaceError`` at its line) and apply ``overrides`` (the names
    of ``search:``; a bad one is a ``ValueError`` naming it): the plan of a new search."""
    return _plan(sf).override(**(overrides or {}))
