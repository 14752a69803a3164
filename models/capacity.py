"""Expert capacity with token dropping (GShard, Lepikhin et al. 2020, §2.2; Switch
Transformer, Fedus et al. 2021, eq. 3).

Each expert processes at most

    C = ceil(capacity_factor · P / n)

(row, expert) assignments per batch, where P is the number of assignments the gate made
(P = k·tokens for a top-k gate, which is the papers' ``capacity_factor · tokens · k / n``).
Assignments beyond C are dropped: their combine weight becomes 0, the surviving weights are
*not* renormalised (as in both papers), and a token that loses every assignment gets no expert
output (in a residual block it passes through unchanged).

Priority (GShard): every token's first choice comes before any token's second choice, and
within a choice rank earlier tokens (in batch-then-sequence order) come first. The limit
works for any gate (a choice's rank is its position in the token's weights sorted by
decreasing value), though it is meant for Top-k/Switch.
"""

from __future__ import annotations

import math

import torch

from gatesearch.models.gates.base import Routing


def expert_capacity(assignments: int, n_experts: int, capacity_factor: float) -> int:
    """C = ceil(capacity_factor · assignments / n_experts), at least 1 when anything is assigned."""
    if assignments == 0:
        return 0
    return max(1, math.ceil(capacity_factor * assignments / n_experts))


def apply_capacity(routing: Routing, capacity_factor: float) -> Routing:
    """``routing`` with the assignments beyond each expert's capacity dropped (see the module doc).

    The returned :class:`Routing` has the dropped weights zeroed (so its mask is what is really
    dispatched) and ``dropped`` set to the ``(B, n)`` mask of what was dropped.
    """
    if capacity_factor <= 0:
        raise ValueError(f"capacity_factor must be > 0, got {capacity_factor}")
    w = routing.weights
    B, n = w.shape
    mask = w != 0
    rows, experts = mask.nonzero(as_tuple=True)  # row-major: sorted by row, then expert
    P = rows.numel()
    capacity = expert_capacity(P, n, capacity_factor)
    # rank of each assignment within its row (0 = largest weight)
    rank = w.detach().abs().argsort(dim=1, descending=True, stable=True).argsort(dim=1)[rows, experts]
    priority = rank * B + rows  # all first choices (in row order), then all second choices, ...
    order = priority.argsort(stable=True)
    by_expert = experts[order].argsort(stable=True)  # grouped by expert, priority order inside a group
    grouped = order[by_expert]
    counts = torch.bincount(experts, minlength=n)
    starts = torch.cumsum(counts, 0) - counts
    position = torch.empty_like(grouped)
    position[grouped] = torch.arange(P, device=w.device) - starts.repeat_interleave(counts)
    over = position >= capacity
    dropped = torch.zeros_like(mask)
    dropped[rows[over], experts[over]] = True
    weights = w.masked_fill(dropped, 0.0)
    return Routing(weights=weights, aux_losses=routing.aux_losses, gate_macs=routing.gate_macs, dropped=dropped)
