"""Multi-gate MoE layer with real sparse dispatch (Shazeer et al. 2017; MMoE-style
one gate per task, as in COMET and DSelect-k).

    y_t(x) = Σ_i g_{t,i}(x) f_i(x)     for each task t

Sparse path: expert i runs only on the rows where some task's gate gives it a
nonzero weight (gather rows by expert, one matmul per expert, scatter-add back).
Per-sample compute (MACs) = Σ_t gate_t MACs + (#dispatched (row, expert) pairs / B) ×
expert MACs — exactly the matmuls the sparse path executes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from gatesearch.models.capacity import apply_capacity
from gatesearch.models.experts import ExpertBank
from gatesearch.models.gates.base import Gate, RouteContext, Routing


@dataclass(frozen=True)
class MoEOutput:
    """Result of one MoE layer call.

    Attributes:
        outputs: per task, ``(B, d_out)``.
        routings: per task, the gate's :class:`Routing`.
        macs_per_sample: mean MACs per row spent in gates + dispatched experts.
        active_experts: mean number of experts run per row (union over tasks).
    """

    outputs: list[Tensor]
    routings: list[Routing]
    macs_per_sample: float
    active_experts: float


class MoELayer(nn.Module):
    """Shared experts, one gate per task; optionally an expert capacity per gate
    (:mod:`~gatesearch.models.capacity`: ``capacity_factor`` None = no limit)."""

    def __init__(self, experts: ExpertBank, gates: Sequence[Gate], *, capacity_factor: float | None = None):
        super().__init__()
        if capacity_factor is not None and not capacity_factor > 0:
            raise ValueError(f"capacity_factor must be > 0 (or None for no limit), got {capacity_factor}")
        self.capacity_factor = capacity_factor
        if not gates:
            raise ValueError("MoELayer needs at least one gate")
        for g in gates:
            if g.n_experts != experts.n_experts:
                raise ValueError(f"gate routes to {g.n_experts} experts but the bank has {experts.n_experts}")
        self.experts = experts
        self.gates = nn.ModuleList(gates)

    def route(self, x: Tensor, ctx: RouteContext) -> list[Routing]:
        routings = [g(x, ctx) for g in self.gates]
        if self.capacity_factor is not None:
            routings = [apply_capacity(r, self.capacity_factor) for r in routings]
        return routings

    def forward(self, x: Tensor, ctx: RouteContext, *, dense: bool = False) -> MoEOutput:
        """Route and combine. ``dense=True`` runs every expert on every row (reference only)."""
        routings = self.route(x, ctx)
        B = x.shape[0]
        union = torch.stack([r.mask for r in routings]).any(dim=0)  # (B, n)
        gate_macs = sum(r.gate_macs for r in routings)
        if dense:
            all_out = self.experts.forward_dense(x)  # (n, B, d_out)
            outputs = [torch.einsum("bn,nbd->bd", r.weights, all_out) for r in routings]
            pairs = B * self.experts.n_experts
        else:
            # Dispatched (row, expert) pairs, grouped by expert.
            experts_idx, rows = union.t().nonzero(as_tuple=True)
            expert_out = self.experts.forward_sparse(x, rows, experts_idx)  # (P, d_out)
            outputs = []
            for r in routings:
                w = r.weights[rows, experts_idx].unsqueeze(1)  # (P, 1)
                y = x.new_zeros(B, self.experts.d_out)
                outputs.append(y.index_add(0, rows, w * expert_out))
            pairs = int(rows.numel())
        macs = gate_macs + pairs / max(B, 1) * self.experts.macs_per_call()
        return MoEOutput(outputs=outputs, routings=routings, macs_per_sample=float(macs),
                         active_experts=float(union.sum().item()) / max(B, 1) if not dense else float(self.experts.n_experts))
