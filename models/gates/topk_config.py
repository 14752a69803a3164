"""The topk gate's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass

from gatesearch.models.gates.contract import check_k
from gatesearch.models.gates.registry import register_gate_config
from gatesearch.models.knobs import knob


@dataclass(frozen=True)
class TopKGateConfig:
    """Top-k gate settings.

    Attributes:
        k: experts per row (1 <= k <= n_experts).
        noisy: add the learned Gaussian noise of Shazeer et al. during training.
        w_importance: weight of CV²(Importance) (App. A, Eq. 6); 0 disables it.
        w_load: weight of CV²(Load) (App. A, Eq. 8-10); 0 disables it; needs noisy.
    """

    k: int = knob(2, "topk: experts per row (1 = Switch)", low=1, high=256)
    noisy: bool = knob(True, "topk: learned Gaussian noise (Shazeer et al.)")
    w_importance: float = knob(0.0, "topk: importance loss weight", low=0.0, high=100.0)
    w_load: float = knob(0.0, "topk: load loss weight (only with noisy: true)", low=0.0, high=100.0,
                         when={"noisy": (True,)})

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"topk: k must be >= 1, got {self.k}")
        if self.w_importance < 0 or self.w_load < 0:
            raise ValueError("topk: w_importance and w_load must be >= 0")
        if self.w_load > 0 and not self.noisy:
            raise ValueError("topk: the load loss needs noisy=True (it is defined through the noise CDF)")

    def experts_per_row(self, n_experts: int) -> int:
        """``k`` (Switch: 1); ``k > n_experts`` is an error."""
        check_k(self.k, n_experts)
        return self.k


register_gate_config("topk", TopKGateConfig)
