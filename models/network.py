"""A multi-task MoE network: shared sparse MoE layer, one gate and one tower per task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from gatesearch.models.experts import ExpertBank
from gatesearch.models.gates.base import Gate, RouteContext, Routing, build_gate
from gatesearch.models.gates.contract import GateConfig, experts_per_row
from gatesearch.models.gates.local_search import (
    LocalSearchConfig,
    PermutationLocalSearch,
)
from gatesearch.models.gates.registry import gate_configs
from gatesearch.models.moe import MoELayer


@dataclass(frozen=True)
class MoENetworkConfig:
    """Architecture of :class:`MoENetwork`.

    Attributes:
        gate: a registered gate config (e.g. ``CometGateConfig(k=2)``); one gate per task. It must
            fit ``n_experts`` (:func:`~gatesearch.models.gates.contract.experts_per_row`: e.g. k <= n).
        n_experts: number of shared experts.
        expert_hidden, expert_out: expert MLP widths.
        dropout: dropout inside experts.
        tower_hidden: hidden width of each task tower (0 = a linear tower).
        local_search: attach permutation local search to every gate when set.
    """

    gate: GateConfig
    n_experts: int = 8
    expert_hidden: int = 64
    expert_out: int = 32
    dropout: float = 0.0
    tower_hidden: int = 0
    local_search: LocalSearchConfig | None = None

    def __post_init__(self) -> None:
        if not any(type(self.gate) is t for t in gate_configs().values()):
            raise TypeError(f"gate config {type(self.gate).__name__} is not registered")
        if self.n_experts < 2:
            raise ValueError(f"n_experts must be >= 2, got {self.n_experts}")
        experts_per_row(self.gate, self.n_experts)  # raises when the gate cannot route over n_experts (k > n)
        if min(self.expert_hidden, self.expert_out) < 1 or self.tower_hidden < 0:
            raise ValueError("expert_hidden and expert_out must be >= 1, tower_hidden >= 0")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class NetworkOutput:
    """Per-task logits plus routing and compute of the call."""

    logits: list[Tensor]
    routings: list[Routing]
    macs_per_sample: float
    active_experts: float

    def aux_loss(self) -> Tensor:
        return torch.stack([r.aux_loss() for r in self.routings]).sum()


def _tower(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    if hidden == 0:
        return nn.Sequential(nn.Linear(d_in, d_out))
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class MoENetwork(nn.Module):
    """x -> MoE layer (shared experts, per-task gates) -> per-task towers -> logits."""

    def __init__(self, config: MoENetworkConfig, *, d_in: int, n_outputs: Sequence[int], num_ids: int | None = None):
        super().__init__()
        self.config = config
        gates: list[Gate] = []
        for _ in n_outputs:
            g = build_gate(config.gate, d_in=d_in, n_experts=config.n_experts, num_ids=num_ids)
            if config.local_search is not None:
                g = PermutationLocalSearch(g, config.local_search)
            gates.append(g)
        bank = ExpertBank(config.n_experts, d_in, config.expert_hidden, config.expert_out, config.dropout)
        self.moe = MoELayer(bank, gates)
        self.towers = nn.ModuleList(_tower(config.expert_out, config.tower_hidden, c) for c in n_outputs)

    def advance(self, step: int) -> None:
        """Tell stateful schedules (local search hardening) that ``step`` is next."""
        for g in self.moe.gates:
            if isinstance(g, PermutationLocalSearch):
                g.advance(step)

    def tower_macs(self) -> float:
        macs = 0
        for t in self.towers:
            macs += sum(m.in_features * m.out_features for m in t if isinstance(m, nn.Linear))
        return float(macs)

    def forward(self, x: Tensor, ctx: RouteContext, *, dense: bool = False) -> NetworkOutput:
        out = self.moe(x, ctx, dense=dense)
        logits = [tower(h) for tower, h in zip(self.towers, out.outputs)]
        return NetworkOutput(logits=logits, routings=out.routings,
                             macs_per_sample=out.macs_per_sample + self.tower_macs(),
                             active_experts=out.active_experts)
