"""JEI-DNN's losses: warm-up, surrogate exit targets and the gate and classifier (IM) losses (the
schedule is :mod:`~gatesearch.objectives.exit_training`'s)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gatesearch.models import per_exit_ce


def warmup_loss(logits: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """CE_L + Σ_{l<L} (G + 1 − l)·CE_l, l 1-based, G = L − 1."""
    ce = per_exit_ce(logits, y).mean(dim=0)
    g = len(logits) - 1
    weights = torch.tensor([g + 1 - l for l in range(1, g + 1)] + [1], dtype=ce.dtype, device=ce.device)
    return (weights * ce).sum()


def optimal_exits(ce: torch.Tensor, costs: torch.Tensor, lam: float) -> torch.Tensor:
    """l* = argmin_l CE_l + λ·C_l / C_L per row (0-based)."""
    return (ce + lam * costs / costs[-1]).argmin(dim=1)


def gate_loss(gate_logits: torch.Tensor, lstar: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """BCE of gate l against t_l = 1[l >= l*] (exit here or at any later gate is fine)."""
    l_idx = torch.arange(gate_logits.shape[1], device=gate_logits.device)
    targets = (l_idx[None, :] >= lstar[:, None]).to(gate_logits.dtype)
    return F.binary_cross_entropy_with_logits(gate_logits, targets, pos_weight=pos_weight)


def im_loss(logits: list[torch.Tensor], exit_probs: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    ce = per_exit_ce(logits, y)  # (B, L)
    if mode == "plain":
        return ce.sum(dim=1).mean()
    p = exit_probs.detach()
    rho = (ce.sum(dim=1) / (p * ce).sum(dim=1).clamp_min(1e-8)).detach()  # detached: see module doc
    return ((p * ce).sum(dim=1) * rho).mean()
