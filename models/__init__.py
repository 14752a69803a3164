"""PyTorch models: sparse-MoE gates, permutation local search, MoE layers, EvoMoE, early
exits, compute accounting (:func:`~gatesearch.models.macs.count_macs` for a whole model). This
package imports nothing else of gatesearch.

Names are imported on first use (PEP 562): the configs and knobs (``*_config`` modules,
:mod:`~gatesearch.models.knobs`) need no PyTorch, the modules do.
"""

from __future__ import annotations

import importlib
from typing import Any

from gatesearch.models.gates import __all__ as _GATE_NAMES

_WHERE = {
    "EarlyExitConfig": "early_exit", "EarlyExitNetwork": "early_exit", "ExitOutput": "early_exit",
    "conditional_exit": "early_exit", "exit_distribution": "early_exit", "first_exit": "early_exit",
    "per_exit_ce": "early_exit", "uncertainty_features": "early_exit",
    "EvoMoEConfig": "evomoe_config", "EvoMoENetwork": "evomoe", "spawn_experts": "evomoe",
    "ExpertBank": "experts", "MoELayer": "moe", "MoEOutput": "moe",
    "MoEFeedForward": "moe_ffn", "MoEFeedForwardOutput": "moe_ffn",
    "apply_capacity": "capacity", "expert_capacity": "capacity",
    "MacCount": "macs", "count_macs": "macs",
    "MoENetwork": "network", "MoENetworkConfig": "network", "NetworkOutput": "network",
    **{name: "gates" for name in _GATE_NAMES},
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value
