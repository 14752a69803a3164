"""gatesearch: multi-objective search over sparse-MoE gates and early-exit networks.

The distribution installs four packages under this namespace (the folders stay at the
repository's top level; ``pyproject.toml`` maps them):

- :mod:`gatesearch.models`: PyTorch modules (gates, local search, MoE layers, EvoMoE, early exits);
- :mod:`gatesearch.spaces`: the declarative search space and its YAML files;
- :mod:`gatesearch.objectives`: data sets, training loops, metrics, the objective registry;
- :mod:`gatesearch.search`: Ray Tune, searchers, schedulers, Pareto fronts, MLflow, the CLI.

The names below are the public API. They are imported on first use, so ``import gatesearch``
stays cheap (no torch, Ray or MLflow until a name that needs them is touched)::

    from gatesearch import Objective, register_objective, run_search, load_space_file, MoEFeedForward
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_API: dict[str, str] = {
    # search spaces
    "Space": "gatesearch.spaces", "Float": "gatesearch.spaces", "Int": "gatesearch.spaces",
    "Categorical": "gatesearch.spaces", "Fixed": "gatesearch.spaces", "Condition": "gatesearch.spaces",
    "SpaceFile": "gatesearch.spaces", "SpaceError": "gatesearch.spaces", "load_space_file": "gatesearch.spaces",
    "parse_space_file": "gatesearch.spaces",
    # objectives
    "Objective": "gatesearch.objectives", "DatasetObjective": "gatesearch.objectives.base",
    "FunctionObjective": "gatesearch.objectives.function", "EpochReports": "gatesearch.objectives.reports",
    "register_objective": "gatesearch.objectives", "get_objective": "gatesearch.objectives",
    "Metric": "gatesearch.objectives", "ParamRule": "gatesearch.objectives", "ParamSchema": "gatesearch.objectives",
    "measure_inference": "gatesearch.objectives.cost", "load_cv": "gatesearch.objectives.cost",
    # models
    "Gate": "gatesearch.models", "Routing": "gatesearch.models", "RouteContext": "gatesearch.models",
    "register_gate": "gatesearch.models", "build_gate": "gatesearch.models", "MoELayer": "gatesearch.models",
    "MoEFeedForward": "gatesearch.models", "MoEFeedForwardOutput": "gatesearch.models",
    "apply_capacity": "gatesearch.models", "count_macs": "gatesearch.models", "MacCount": "gatesearch.models",
    "MoENetwork": "gatesearch.models", "MoENetworkConfig": "gatesearch.models",
    "EarlyExitNetwork": "gatesearch.models", "EvoMoENetwork": "gatesearch.models",
    # search
    "run_search": "gatesearch.search.lifecycle.runner", "resume_search": "gatesearch.search.lifecycle.runner",
    "SearchResult": "gatesearch.search.lifecycle.result", "SearchSettings": "gatesearch.search.config.settings",
    "SearchInterrupted": "gatesearch.search.lifecycle.interrupt", "SearchFailing": "gatesearch.search.lifecycle.failures",
    "load_search": "gatesearch.search.lifecycle.load", "extend_search": "gatesearch.search.lifecycle.runner",
}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'gatesearch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})
