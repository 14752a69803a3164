"""Gates: the contract (:mod:`~gatesearch.models.gates.base`; the configs' side in
:mod:`~gatesearch.models.gates.contract`), one module per gate, and one torch-free config module
per gate (``<gate>_config``, registered in :mod:`~gatesearch.models.gates.registry`). Both are
found by a scan of this folder (a new gate is one file here, or two with a torch-free config).

Names are imported on first use (PEP 562), so reading a gate's config does not import
PyTorch; touching the gate registry (``GATES``, ``gate_names``) registers every built-in gate.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Gate": "base", "RouteContext": "base", "Routing": "base", "build_gate": "base", "gate_names": "base",
    "register_gate": "base", "unregister_gate": "base", "GATES": "base",
    "CometGate": "comet", "tree_depth": "comet", "CometGateConfig": "comet_config",
    "DSelectKGate": "dselect_k", "DSelectKGateConfig": "dselect_k_config",
    "DTSGate": "dts", "dts_temperature": "dts", "DTSGateConfig": "dts_config",
    "HashGate": "hash", "HashGateConfig": "hash_config",
    "LocalSearchConfig": "local_search_config", "PermutationLocalSearch": "local_search",
    "smooth_step": "smooth", "SoftmaxGate": "softmax", "SoftmaxGateConfig": "softmax_config",
    "TopKGate": "topk", "TopKGateConfig": "topk_config",
    "GATE_CONFIGS": "registry", "gate_configs": "registry", "gate_config_names": "registry",
    "register_gate_config": "registry", "scan_gate_modules": "registry",
    "GateConfig": "contract", "experts_per_row": "contract", "derived_values": "contract",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{mod}")
    if name == "GATES":
        module._load_builtins()  # the registry is complete when it is read
    value = getattr(module, name)
    globals()[name] = value
    return value
