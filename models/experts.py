"""A bank of n two-layer MLP experts with stacked weights, run sparsely or densely."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class ExpertBank(nn.Module):
    """n experts f_i(x) = W2_i · dropout(act(W1_i x + b1_i)) + b2_i (act: ReLU or GELU).

    Weights are stacked (``W1: (n, d_in, hidden)``, ``W2: (n, hidden, d_out)``) so the
    same parameters serve the sparse path (one matmul per expert on its rows only) and
    the dense reference (one batched matmul over all experts and rows).
    """

    def __init__(self, n_experts: int, d_in: int, hidden: int, d_out: int, dropout: float = 0.0,
                 activation: str = "relu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.n_experts, self.d_in, self.hidden, self.d_out, self.dropout = n_experts, d_in, hidden, d_out, dropout
        self.w1 = nn.Parameter(torch.empty(n_experts, d_in, hidden))
        self.b1 = nn.Parameter(torch.empty(n_experts, hidden))
        self.w2 = nn.Parameter(torch.empty(n_experts, hidden, d_out))
        self.b2 = nn.Parameter(torch.empty(n_experts, d_out))
        for w, b, fan_in in ((self.w1, self.b1, d_in), (self.w2, self.b2, hidden)):
            bound = 1.0 / math.sqrt(fan_in)  # nn.Linear's default init, per expert
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def macs_per_call(self) -> int:
        """MACs of one expert on one row."""
        return self.d_in * self.hidden + self.hidden * self.d_out

    def run_one(self, e: int, x: Tensor, weights: tuple[tuple[Tensor, ...], ...] | None = None) -> Tensor:
        """Expert ``e`` on rows ``x`` ``(r, d_in)`` -> ``(r, d_out)``.

        ``weights`` is ``(w1, b1, w2, b2)`` already unbound per expert; unbinding once per
        call (instead of indexing ``w1[e]`` per expert) makes backward write each
        parameter's gradient once rather than once per expert.
        """
        w1, b1, w2, b2 = weights if weights is not None else (self.w1, self.b1, self.w2, self.b2)
        h = ACTIVATIONS[self.activation](torch.addmm(b1[e], x, w1[e]))
        h = F.dropout(h, self.dropout, self.training)
        return torch.addmm(b2[e], h, w2[e])

    def forward_sparse(self, x: Tensor, rows: Tensor, experts: Tensor) -> Tensor:
        """Run each expert only on its dispatched rows.

        Args:
            x: ``(B, d_in)``.
            rows, experts: ``(P,)`` int64 dispatched (row, expert) pairs, sorted by expert.
        Returns:
            ``(P, d_out)``: f_{experts[p]}(x[rows[p]]).
        """
        counts = torch.bincount(experts, minlength=self.n_experts).tolist()
        weights = tuple(p.unbind(0) for p in (self.w1, self.b1, self.w2, self.b2))
        xs = x.index_select(0, rows).split(counts)  # one gather, then contiguous per-expert slices
        outs = [self.run_one(e, xe, weights) for e, (xe, c) in enumerate(zip(xs, counts)) if c]
        if not outs:
            return x.new_zeros(0, self.d_out)
        return torch.cat(outs, dim=0)

    def forward_dense(self, x: Tensor) -> Tensor:
        """Every expert on every row: ``(n, B, d_out)`` (the reference path)."""
        xb = x.unsqueeze(0).expand(self.n_experts, -1, -1)
        h = ACTIVATIONS[self.activation](torch.baddbmm(self.b1[:, None, :], xb, self.w1))
        h = F.dropout(h, self.dropout, self.training)
        return torch.baddbmm(self.b2[:, None, :], h, self.w2)
