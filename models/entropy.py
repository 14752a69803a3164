"""The one entropy helper of the models (gate regularisers, local search, exit features)."""

from __future__ import annotations

import torch
from torch import Tensor


def entropy(p: Tensor, dim: int | None = -1, eps: float = 1e-6) -> Tensor:
    """H(p) = −Σ p · log(p + ε) along ``dim`` (elementwise terms when ``dim`` is None).

    ε = 1e-6 is the official COMET / DSelect-k / permutation-search codes' choice (it keeps the
    gradient at p = 0 finite); exit features use a smaller ε since they are not differentiated.
    """
    terms = -(p * torch.log(p + eps))
    return terms if dim is None else terms.sum(dim=dim)
