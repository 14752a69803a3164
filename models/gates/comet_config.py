"""The comet gate's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gatesearch.models.gates.registry import register_gate_config
from gatesearch.models.knobs import knob


def tree_depth(n_experts: int) -> int:
    """Depth of the complete binary tree with ``n_experts`` leaves: ceil(log2 n)."""
    return max(1, math.ceil(math.log2(n_experts)))


@dataclass(frozen=True)
class CometGateConfig:
    """COMET settings.

    Attributes:
        k: number of trees (max nonzeros).
        gamma: smooth-step width γ.
        entropy_weight: λ of the leaf-distribution entropy (batch mean).
        node_bias: hyperplanes have a bias term.
    """

    k: int = knob(2, "comet: trees (max experts per sample)", low=1, high=256)
    gamma: float = knob(1.0, "comet: smooth-step width", low=1e-6, high=1e3)
    entropy_weight: float = knob(0.1, "comet: entropy regulariser λ", low=0.0, high=1e3)
    node_bias: bool = knob(True, "comet: hyperplanes have a bias")

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"comet: k must be >= 1, got {self.k}")
        if self.gamma <= 0:
            raise ValueError(f"comet: gamma must be > 0, got {self.gamma}")
        if self.entropy_weight < 0:
            raise ValueError("comet: entropy_weight must be >= 0")


register_gate_config("comet", CometGateConfig)
