"""The objective contract and its registry.

An objective turns one flat configuration (what a searcher proposes) into a trained
model and its metrics. It declares the metrics it optimises (name + direction, from
:mod:`objectives.metrics`), a :class:`ParamSchema` of the keys it accepts, and
defaults for every key a space does not set.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping

from gatesearch._hints import did_you_mean
from gatesearch.objectives.metrics import Metric, Report
from gatesearch.objectives.schema import ParamSchema


class Objective(ABC):
    """Train-and-evaluate one configuration."""

    name: str
    #: the optimised metrics (the Pareto axes), in order
    objectives: tuple[Metric, ...]
    schema: ParamSchema
    defaults: Mapping[str, Any]
    #: configuration keys that say what a trial was, shown (in this order) in front tables,
    #: figures and artifacts; the first one labels points in the front figure
    front_columns: tuple[str, ...] = ()
    #: reported metrics shown next to the objectives in front tables (e.g. test accuracy)
    summary_metrics: tuple[str, ...] = ()
    #: whether :meth:`run` takes ``restore=``/``save=`` (per-epoch checkpoints, see
    #: :mod:`~gatesearch.objectives.checkpoint`); the search checkpoints trials of such objectives
    checkpoints: bool = False

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

    def active(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The keys of a resolved ``config`` that have an effect for this configuration (what a
        trial's run logs as parameters). Default: all of them."""
        return dict(config)

    def run_label(self, config: Mapping[str, Any]) -> str:
        """A few words saying what a trial is, for its run name (e.g. ``comet n8 k2``); the
        search appends ``#<trial number>``. Default: the :meth:`summary` values."""
        return " ".join(str(v) for v in self.summary(config).values())

    def why_inert(self, key: str) -> str:
        """Why ``key`` can have no effect (used when a space sets a key that no configuration of
        it reads); objectives override this to name the component that reads it."""
        return "no configuration of this space reads it"

    def summary(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The :attr:`front_columns` of a resolved ``config`` (with :meth:`derived` values),
        omitting those without effect for it."""
        values = {**self.active(config), **self.derived(config)}
        return {c: values[c] for c in self.front_columns if c in values}

    @abstractmethod
    def run(self, config: Mapping[str, Any], *, report: Report | None = None, device: str = "cpu") -> dict[str, float]:
        """Train and evaluate; call ``report`` once per epoch; return final metrics.

        Objectives with :attr:`checkpoints` also take ``restore`` (a training state to continue
        from: the epochs it covers are not trained or reported again) and ``save`` (called with the
        training state after each epoch, before ``report``)."""


class DatasetObjective(Objective):
    """An objective trained on one data set, loaded once per split seed and kept in memory
    (every trial an actor runs reuses it)."""

    def __init__(self, name: str, load: Callable[[int], Any]):
        self.name, self._load = name, load
        self._cache: dict[int, Any] = {}

    def data(self, seed: int):
        """The data set split with ``seed`` (loaded on first use)."""
        if seed not in self._cache:
            self._cache[seed] = self._load(seed)
        return self._cache[seed]


class DataLoader:
    """``seed -> Dataset`` by the name of a loader in :mod:`gatesearch.objectives.data`, imported
    when first called (registering objectives, and checking a space, need no PyTorch)."""

    def __init__(self, name: str, **kwargs: Any):
        self.name, self.kwargs = name, kwargs

    def __call__(self, seed: int):
        return getattr(importlib.import_module("gatesearch.objectives.data"), self.name)(seed=seed, **self.kwargs)


OBJECTIVES: dict[str, Objective] = {}


def register_objective(objective: Objective) -> Objective:
    """Add ``objective`` to the registry under its ``name``; duplicates are an error."""
    if objective.name in OBJECTIVES:
        raise ValueError(f"objective {objective.name!r} is already registered")
    OBJECTIVES[objective.name] = objective
    return objective


def get_objective(name: str) -> Objective:
    """Look up a registered objective, with a did-you-mean on typos.

    ``"package.module:attr"`` names a user objective outside this package: the module is
    imported (on the driver and on every Ray worker, so it must be importable there: an
    installed package or a PYTHONPATH entry) and ``attr`` must be an :class:`Objective`
    instance or a class constructible without arguments. It is registered under that name.
    """
    if name not in OBJECTIVES and ":" in name:
        OBJECTIVES[name] = _import_objective(name)
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}{did_you_mean(name, OBJECTIVES)}; registered: {sorted(OBJECTIVES)} "
                         f"(or give your own as 'package.module:attr')")
    return OBJECTIVES[name]


def _import_objective(name: str) -> Objective:
    module, _, attr = name.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"objective {name!r}: cannot import {attr!r} from {module!r} ({e}); "
                         f"make the module importable (pip install it, or add its folder to PYTHONPATH)") from None
    if isinstance(obj, type) and issubclass(obj, Objective):
        obj = obj()
    if not isinstance(obj, Objective):
        raise ValueError(f"objective {name!r}: {attr!r} is a {type(obj).__name__}, not an objectives.Objective")
    return obj
