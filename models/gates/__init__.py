"""Gates: the contract (:mod:`models.gates.base`) and one module per gate.

Importing this package registers every built-in gate in :data:`GATES`.
"""

from models.gates.base import GATES, Gate, RouteContext, Routing, build_gate, gate_names, register_gate
from models.gates.comet import CometGate, CometGateConfig, tree_depth
from models.gates.dselect_k import DSelectKGate, DSelectKGateConfig
from models.gates.dts import DTSGate, DTSGateConfig, dts_temperature
from models.gates.hash import HashGate, HashGateConfig
from models.gates.local_search import LocalSearchConfig, PermutationLocalSearch
from models.gates.smooth_step import smooth_step
from models.gates.softmax import SoftmaxGate, SoftmaxGateConfig
from models.gates.topk import TopKGate, TopKGateConfig

__all__ = [
    "GATES", "Gate", "RouteContext", "Routing", "build_gate", "gate_names", "register_gate",
    "CometGate", "CometGateConfig", "tree_depth", "DSelectKGate", "DSelectKGateConfig",
    "DTSGate", "DTSGateConfig", "dts_temperature",
    "HashGate", "HashGateConfig", "LocalSearchConfig", "PermutationLocalSearch", "smooth_step",
    "SoftmaxGate", "SoftmaxGateConfig", "TopKGate", "TopKGateConfig",
]
