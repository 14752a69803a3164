"""Objectives: data sets, training loops, metrics. Imports ``models`` only.

Importing this package registers the built-in objectives in :data:`OBJECTIVES`.
"""

from gatesearch.objectives import early_exit as _exit  # noqa: F401 - registers the early-exit objectives
from gatesearch.objectives import moe_classification as _moe  # noqa: F401 - registers moe_* / evomoe_* objectives
from gatesearch.objectives import moe_lm as _lm  # noqa: F401 - registers the transformer LM objectives
from gatesearch.objectives.base import (
           OBJECTIVES,
           Objective,
           get_objective,
           register_objective,
)
from gatesearch.objectives.metrics import METRICS, Metric
from gatesearch.objectives.schema import ParamRule, ParamSchema

__all__ = ["OBJECTIVES", "Objective", "get_objective", "register_objective", "METRICS", "Metric",
           "ParamRule", "ParamSchema"]
