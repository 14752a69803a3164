"""PyTorch models: sparse-MoE gates, permutation local search, MoE layers, compute accounting.

This package imports nothing else of gatesearch.
"""

from gatesearch.models.early_exit import (
                               EarlyExitConfig,
                               EarlyExitNetwork,
                               ExitOutput,
                               conditional_exit,
                               exit_distribution,
                               first_exit,
                               per_exit_ce,
                               uncertainty_features,
)
from gatesearch.models.evomoe import EvoMoEConfig, EvoMoENetwork, spawn_experts
from gatesearch.models.experts import ExpertBank
from gatesearch.models.gates import *  # noqa: F401,F403 - registers the built-in gates
from gatesearch.models.gates import __all__ as _gates_all
from gatesearch.models.moe import MoELayer, MoEOutput
from gatesearch.models.network import MoENetwork, MoENetworkConfig, NetworkOutput

__all__ = ["EarlyExitConfig", "EarlyExitNetwork", "ExitOutput", "conditional_exit", "exit_distribution", "first_exit",
           "per_exit_ce", "uncertainty_features",
           "EvoMoEConfig", "EvoMoENetwork", "spawn_experts", "ExpertBank", "MoELayer", "MoEOutput", "MoENetwork", "MoENetworkConfig", "NetworkOutput", *_gates_all]
