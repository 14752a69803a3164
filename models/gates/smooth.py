"""The cubic smooth-step of DSelect-k (Hazimeh et al. 2021, Eq. 4), shared with COMET."""

from __future__ import annotations

import torch
from torch import Tensor


def smooth_step(t: Tensor, gamma: float) -> Tensor:
    """S(t) = 0 if t <= -γ/2; 1 if t >= γ/2; -2t³/γ³ + 3t/(2γ) + 1/2 otherwise.

    C¹ everywhere, and *exactly* 0 or 1 outside ``(-γ/2, γ/2)``, which is what lets
    routing become exactly sparse.
    """
    cubic = -2.0 * t.pow(3) / gamma**3 + 3.0 * t / (2.0 * gamma) + 0.5
    return torch.where(t <= -gamma / 2, torch.zeros_like(t), torch.where(t >= gamma / 2, torch.ones_like(t), cubic))
