"""Objectives: data sets, training loops, metrics. Imports ``models`` only.

Importing this package registers the built-in objectives in :data:`OBJECTIVES`.
"""

from objectives import early_exit as _exit  # noqa: F401 - registers the early-exit objectives
from objectives import moe_classification as _moe  # noqa: F401 - registers moe_* / evomoe_* objectives
from objectives.base import OBJECTIVES, Objective, get_objective, register_objective
from objectives.metrics import METRICS, Metric
from objectives.schema import ParamRule, ParamSchema

__all__ = ["OBJECTIVES", "Objective", "get_objective", "register_objective", "METRICS", "Metric",
           "ParamRule", "ParamSchema"]
