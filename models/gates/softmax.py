"""Dense softmax gate: every expert runs on every row (the reference MoE)."""

from __future__ import annotations

from torch import Tensor, nn

from gatesearch.models.gates.base import Gate, RouteContext, Routing, register_gate
from gatesearch.models.gates.softmax_config import SoftmaxGateConfig  # noqa: F401 - re-exported


@register_gate("softmax", SoftmaxGateConfig)
class SoftmaxGate(Gate):
    def __init__(self, config: SoftmaxGateConfig, *, d_in: int, n_experts: int, num_ids: int | None = None):
        super().__init__()
        self.config, self.n_experts, self.d_in = config, n_experts, d_in
        self.proj = nn.Linear(d_in, n_experts)

    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:
        return Routing(weights=self.proj(x).softmax(dim=-1), gate_macs=self.macs_per_sample())

    def macs_per_sample(self) -> float:
        return float(self.d_in * self.n_experts)
