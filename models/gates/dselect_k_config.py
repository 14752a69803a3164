"""The dselect_k gate's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass

from gatesearch.models.gates.contract import check_k
from gatesearch.models.gates.registry import register_gate_config
from gatesearch.models.knobs import knob


@dataclass(frozen=True)
class DSelectKGateConfig:
    """DSelect-k settings.

    Attributes:
        k: number of selectors (max nonzeros).
        gamma: smooth-step width γ.
        entropy_weight: λ of the entropy regulariser (batch mean).
        zeta: weight of the reachable-mass term (used only when n is not a power of 2).
        per_example: selectors computed from x (True) or free task-level parameters (False).
    """

    k: int = knob(2, "dselect_k: selectors (max experts per sample)", low=1, high=256)
    gamma: float = knob(1.0, "dselect_k: smooth-step width", low=1e-6, high=1e3)
    entropy_weight: float = knob(0.1, "dselect_k: entropy regulariser λ", low=0.0, high=1e3)
    zeta: float = knob(1.0, "dselect_k: reachable-mass weight (n not a power of 2)", low=0.0, high=1e3)
    per_example: bool = knob(True, "dselect_k: per-example (true) or static task-level selectors")

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"dselect_k: k must be >= 1, got {self.k}")
        if self.gamma <= 0:
            raise ValueError(f"dselect_k: gamma must be > 0, got {self.gamma}")
        if self.entropy_weight < 0 or self.zeta < 0:
            raise ValueError("dselect_k: entropy_weight and zeta must be >= 0")

    def experts_per_row(self, n_experts: int) -> int:
        """``k``: each selector picks one expert once its smooth-steps saturate; ``k > n_experts``
        is an error."""
        check_k(self.k, n_experts)
        return self.k


register_gate_config("dselect_k", DSelectKGateConfig)
