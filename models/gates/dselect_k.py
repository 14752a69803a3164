"""DSelect-k (Hazimeh et al., NeurIPS 2021): differentiable k-sparse selection.

With m = ceil(log2 n) and binary codes b(i) (MSB first), one selector z ∈ R^m gives
    r(z)_i = Π_j [ S(z_j) if b(i)_j = 1 else 1 - S(z_j) ]                (Eq. 5)
and k selectors mixed by α give  g(x) = Σ_s softmax(α)_s r(z^(s))        (Eq. 6)
so ||g||_0 <= k once every S(z_j) is exactly 0 or 1.

Regularisers: λ Σ_s mean_batch H(r(z^(s))) (entropy, pushes S to {0, 1}); when n is
not a power of two, ζ Σ_s mean_batch 1 / Σ_{i<n} r(z^(s))_i keeps the mass on the
codes 0..n-1 (the paper's extra term; we clamp the mass at 0.01 so a selector that
saturated elsewhere costs at most 100ζ instead of overflowing).

Deviation, documented: in the official code mass on codes >= n is simply lost, so g
leaves the simplex and a selector saturated on such a code routes nowhere (zero
gradient, stuck). We fold code c >= n onto expert c - n (2^m < 2n, so that is a
valid expert): g stays exactly on the simplex and a hard selector always picks one
expert; the ζ term still prefers the primary codes.

Side effect of the folding, at initialisation: the selectors start with S(z) ≈ 1/2, so every
one of the 2^m codes has probability ≈ 2^-m and experts 0..(2^m − n − 1), which receive two
codes each, start with twice the weight of the others (n = 5, m = 3: experts 0-2 get 2/8 each,
experts 3-4 get 1/8). We considered spreading the folded codes over the experts instead of
folding them onto the first ones: that changes *which* experts are doubled, not that some are
(2^m codes cannot be split evenly over n experts unless n is a power of two), so we keep the
simple folding. The ζ term moves the mass onto the primary codes (one per expert) as training
proceeds; for a power-of-two n there is no folding and the initial load is uniform.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatesearch.models.entropy import entropy
from gatesearch.models.gates.base import Gate, RouteContext, Routing, register_gate
from gatesearch.models.gates.dselect_k_config import DSelectKGateConfig  # noqa: F401 - re-exported
from gatesearch.models.gates.smooth import smooth_step


def binary_codes(n: int, m: int) -> Tensor:
    """``(n, m)`` float tensor: row i is the m-bit binary code of i, MSB first."""
    return torch.tensor([[int(c) for c in format(i, f"0{m}b")] for i in range(n)], dtype=torch.float32)


@register_gate("dselect_k", DSelectKGateConfig)
class DSelectKGate(Gate):
    def __init__(self, config: DSelectKGateConfig, *, d_in: int, n_experts: int, num_ids: int | None = None):
        super().__init__()
        if n_experts < 2:
            raise ValueError("dselect_k needs n_experts >= 2")
        self.config, self.n_experts, self.d_in, self.k = config, n_experts, d_in, config.k
        self.m = max(1, math.ceil(math.log2(n_experts)))
        self.register_buffer("codes", binary_codes(2**self.m, self.m))  # (2^m, m)
        g, k, m = config.gamma, config.k, self.m
        if config.per_example:
            self.z_proj = nn.Linear(d_in, k * m)
            self.alpha_proj = nn.Linear(d_in, k)
            # Init (DSelect-k code): z-weights U(-γ/100, γ/100) keep S in its smooth region;
            # α weights U(-0.05, 0.05) (Keras RandomUniform default); biases 0.
            nn.init.uniform_(self.z_proj.weight, -g / 100, g / 100)
            nn.init.zeros_(self.z_proj.bias)
            nn.init.uniform_(self.alpha_proj.weight, -0.05, 0.05)
            nn.init.zeros_(self.alpha_proj.bias)
        else:
            self.z = nn.Parameter(torch.empty(k, m).uniform_(-g / 100, g / 100))
            self.alpha = nn.Parameter(torch.empty(k).uniform_(-0.05, 0.05))

    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:
        B, k, m = x.shape[0], self.k, self.m
        if self.config.per_example:
            z = self.z_proj(x).view(B, k, m)
            alpha = self.alpha_proj(x)  # (B, k)
        else:
            z = self.z.expand(B, k, m)
            alpha = self.alpha.expand(B, k)
        n = self.n_experts
        s = smooth_step(z, self.config.gamma)[:, :, None, :]  # (B, k, 1, m)
        codes = self.codes[None, None]  # (1, 1, 2^m, m)
        r_codes = (codes * s + (1 - codes) * (1 - s)).prod(dim=-1)  # (B, k, 2^m), Eq. 5; sums to 1
        r = r_codes[..., :n]
        extra = r_codes.shape[-1] - n
        if extra:  # fold codes n..2^m-1 onto experts 0..2^m-n-1
            r = torch.cat([r[..., :extra] + r_codes[..., n:], r[..., extra:]], dim=-1)
        mass = r_codes[..., :n].sum(dim=-1)  # (B, k): mass on primary codes
        weights = (alpha.softmax(dim=-1)[:, :, None] * r).sum(dim=1)  # (B, n), Eq. 6
        aux = {}
        if self.config.entropy_weight > 0:
            aux["entropy"] = self.config.entropy_weight * entropy(r_codes).sum(dim=1).mean()
        if self.n_experts & (self.n_experts - 1) and self.config.zeta > 0:
            aux["reachable"] = self.config.zeta * (1.0 / mass.clamp_min(1e-2)).sum(dim=1).mean()
        return Routing(weights=weights, aux_losses=aux, gate_macs=self.macs_per_sample())

    def macs_per_sample(self) -> float:
        # Dense maps d -> k·m and d -> k; the selector products are element-wise.
        return float(self.d_in * self.k * (self.m + 1)) if self.config.per_example else 0.0
