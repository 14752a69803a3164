"""Permutation-based local search (COMET+, Ibrahim et al. KDD 2023; official code
``model/permutations/learn_permutations.py``), attachable to any gate.

A permutation P ∈ {0,1}^{n×n} re-maps gate slots to experts: g'_j = Σ_i g_i P_ij.
During the first T steps (the budget) P is relaxed to a doubly-stochastic matrix

    P_t = Sinkhorn(A / τ_t, L_t),  τ_t = 10^{log10 τ0 + (log10 τ1 − log10 τ0)·t/T},
                                    L_t = round(L0 + (L1 − L0)·t/T)

(log-linear temperature 1e-3 -> 1e-7, 20 -> 150 iterations, log-space row/column
normalisation) and learned jointly with the task loss plus the entropy term
ζ·[mean_rows H(P) + mean_rows H(P̂)], P̂ = row-normalised P. At t = T the soft matrix
is hardened with the Hungarian algorithm (``linear_sum_assignment(−P)``) and frozen;
the hard permutation is a buffer, so it lives in the state dict, and eval always uses
a hard permutation.

Sharing one P across the k trees/selectors (``learn_k_permutations=false`` in every
official config) makes "permute each tree block, then sum" equal to "permute the
summed gate vector", which is what we do: it works for any gate.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from gatesearch.models.entropy import entropy
from gatesearch.models.gates.base import Gate, RouteContext, Routing
from gatesearch.models.gates.local_search_config import LocalSearchConfig  # noqa: F401 - re-exported


def temperature(step: int, cfg: LocalSearchConfig) -> float:
    """τ_t, log-linear from tau_start (t=0) to tau_end (t=T), constant after T."""
    frac = min(max(step, 0), cfg.budget_steps) / cfg.budget_steps
    return 10 ** (math.log10(cfg.tau_start) + (math.log10(cfg.tau_end) - math.log10(cfg.tau_start)) * frac)


def sinkhorn_iterations(step: int, cfg: LocalSearchConfig) -> int:
    """L_t, linear from iters_start to iters_end over the budget."""
    frac = min(max(step, 0), cfg.budget_steps) / cfg.budget_steps
    return int(round(cfg.iters_start + (cfg.iters_end - cfg.iters_start) * frac))


def sinkhorn(log_alpha: Tensor, iterations: int) -> Tensor:
    """Doubly-stochastic matrix from ``(n, n)`` scores by log-space Sinkhorn normalisation."""
    for _ in range(iterations):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=0, keepdim=True)
    return log_alpha.exp()


def hungarian(p_soft: Tensor) -> Tensor:
    """``(n,)`` permutation maximising Σ_i P[i, perm[i]] (scipy's Hungarian solver)."""
    rows, cols = linear_sum_assignment(-p_soft.detach().cpu().double().numpy())
    perm = np.empty_like(cols)
    perm[rows] = cols
    return torch.as_tensor(perm, dtype=torch.long, device=p_soft.device)


class PermutationLocalSearch(Gate):
    """Wraps any gate: its output slots are permuted by a learned, then frozen, P."""

    def __init__(self, gate: Gate, config: LocalSearchConfig):
        super().__init__()
        self.gate, self.config, self.n_experts = gate, config, gate.n_experts
        n = gate.n_experts
        self.logits = nn.Parameter(torch.empty(n, n).uniform_(-0.05, 0.05))  # A
        self.register_buffer("perm", torch.arange(n))
        self.register_buffer("hardened", torch.tensor(False))

    def soft_permutation(self, step: int) -> Tensor:
        """P_t ``(n, n)`` at ``step``."""
        return sinkhorn(self.logits / temperature(step, self.config), sinkhorn_iterations(step, self.config))

    def advance(self, step: int) -> None:
        """Called by the trainer before ``step``: harden and freeze P once t >= T."""
        if not bool(self.hardened) and step >= self.config.budget_steps:
            with torch.no_grad():
                self.perm.copy_(hungarian(self.soft_permutation(self.config.budget_steps)))
                self.hardened.fill_(True)
            self.logits.requires_grad_(False)

    def hard_permutation(self, step: int) -> Tensor:
        """The permutation eval uses: the frozen one, or Hungarian of the current P_t."""
        return self.perm if bool(self.hardened) else hungarian(self.soft_permutation(step))

    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:
        inner = self.gate(x, ctx)
        g = inner.weights
        aux = dict(inner.aux_losses)
        if self.training and not bool(self.hardened):
            p = self.soft_permutation(ctx.step)
            permuted = g @ p  # g'_j = Σ_i g_i P_ij
            permuted = permuted / permuted.sum(dim=1, keepdim=True).clamp_min(1e-12)
            if self.config.zeta > 0:
                p_hat = p / p.sum(dim=1, keepdim=True)
                ent = entropy(p, dim=1).mean() + entropy(p_hat, dim=1).mean()
                aux["permutation_entropy"] = self.config.zeta * ent
            macs = inner.gate_macs + float(self.n_experts**2)
        else:
            perm = self.hard_permutation(ctx.step)
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(perm.numel(), device=perm.device)
            permuted = g.index_select(1, inverse)  # g'[perm[i]] = g[i]
            macs = inner.gate_macs
        return Routing(weights=permuted, aux_losses=aux, gate_macs=macs)

    def macs_per_sample(self) -> float:
        extra = self.n_experts**2 if (self.training and not bool(self.hardened)) else 0
        return float(self.gate.macs_per_sample() + extra)
