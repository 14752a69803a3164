"""The softmax gate's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass

from gatesearch.models.gates.registry import register_gate_config


@dataclass(frozen=True)
class SoftmaxGateConfig:
    """Dense gate: g(x) = softmax(W x + b). No parameters beyond the linear map."""

    def experts_per_row(self, n_experts: int) -> int:
        """``n_experts``: every expert runs on every row."""
        return n_experts


register_gate_config("softmax", SoftmaxGateConfig)
