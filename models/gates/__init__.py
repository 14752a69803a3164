"""Gates: the contract (:mod:`models.gates.base`) and one module per gate.

Importing this package registers every built-in gate in :data:`GATES`.
"""

from gatesearch.models.gates.base import (
    GATES,
    Gate,
    RouteContext,
    Routing,
    build_gate,
    gate_names,
    register_gate,
)
from gatesearch.models.gates.comet import CometGate, CometGateConfig, tree_depth
from gatesearch.models.gates.dselect_k import DSelectKGate, DSelectKGateConfig
from gatesearch.models.gates.dts import DTSGate, DTSGateConfig, dts_temperature
from gatesearch.models.gates.hash import HashGate, HashGateConfig
from gatesearch.models.gates.local_search import (
    LocalSearchConfig,
    PermutationLocalSearch,
)
from gatesearch.models.gates.smooth_step import smooth_step
from gatesearch.models.gates.softmax import SoftmaxGate, SoftmaxGateConfig
from gatesearch.models.gates.topk import TopKGate, TopKGateConfig

__all__ = [
    "GATES", "Gate", "RouteContext", "Routing", "build_gate", "gate_names", "register_gate",
    "CometGate", "CometGateConfig", "tree_depth", "DSelectKGate", "DSelectKGateConfig",
    "DTSGate", "DTSGateConfig", "dts_temperature",
    "HashGate", "HashGateConfig", "LocalSearchConfig", "PermutationLocalSearch", "smooth_step",
    "SoftmaxGate", "SoftmaxGateConfig", "TopKGate", "TopKGateConfig",
]
