"""Noisy Top-k gate (Shazeer et al. 2017, §2.1 and App. A) with Switch-style top-1.

    H(x)_i = (x W_g)_i + ε_i · softplus((x W_noise)_i),  ε ~ N(0, 1)   (training only)
    G(x)   = softmax(KeepTopK(H(x), k))                               (Eq. 3-5)

For k = 1 a softmax over one logit is constant (no gradient reaches W_g), so we use
the Switch-Transformer form: softmax over all n logits, keep the top-1 probability.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatesearch.models.gates.base import Gate, RouteContext, Routing, register_gate
from gatesearch.models.gates.topk_config import TopKGateConfig  # noqa: F401 - re-exported


def cv_squared(v: Tensor) -> Tensor:
    """Squared coefficient of variation Var/Mean² (+1e-10), Shazeer et al. App. A."""
    if v.numel() <= 1:
        return v.new_zeros(())
    return v.float().var() / (v.float().mean() ** 2 + 1e-10)


@register_gate("topk", TopKGateConfig)
class TopKGate(Gate):
    def __init__(self, config: TopKGateConfig, *, d_in: int, n_experts: int, num_ids: int | None = None):
        super().__init__()
        if config.k > n_experts:
            raise ValueError(f"topk: k={config.k} exceeds n_experts={n_experts}")
        self.config, self.n_experts, self.d_in, self.k = config, n_experts, d_in, config.k
        self.w_gate = nn.Linear(d_in, n_experts, bias=False)
        if config.noisy:
            # Shazeer et al. initialise both to zero; the noise breaks the symmetry.
            nn.init.zeros_(self.w_gate.weight)
            self.w_noise = nn.Linear(d_in, n_experts, bias=False)
            nn.init.zeros_(self.w_noise.weight)
        else:
            self.w_noise = None

    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:
        clean = self.w_gate(x)  # (B, n)
        noisy_train = self.training and self.w_noise is not None
        if noisy_train:
            noise_std = F.softplus(self.w_noise(x)) + 1e-2
            logits = clean + torch.randn_like(clean) * noise_std
        else:
            logits = clean
        k = self.k
        # the (k+1) largest noisy logits: the load loss's thresholds need them for every k
        top_logits, top_idx = logits.topk(min(k + 1, self.n_experts), dim=-1)
        if k == 1:
            # Switch: softmax over all n, keep the top-1 probability (gradient flows to W_g).
            probs = logits.softmax(dim=-1)
            top_val, top_idx = probs.topk(1, dim=-1)
            weights = torch.zeros_like(probs).scatter(1, top_idx, top_val)
            # Renormalise to stay on the simplex; the straight value keeps W_g's gradient.
            weights = weights / top_val.detach()
        else:
            sel = top_logits[:, :k].softmax(dim=-1)
            weights = torch.zeros_like(logits).scatter(1, top_idx[:, :k], sel)
        aux: dict[str, Tensor] = {}
        cfg = self.config
        if cfg.w_importance > 0:
            aux["importance"] = cfg.w_importance * cv_squared(weights.sum(0))
        if cfg.w_load > 0 and noisy_train and k < self.n_experts:
            aux["load"] = cfg.w_load * cv_squared(self._smooth_load(clean, logits, noise_std, top_logits).sum(0))
        return Routing(weights=weights, aux_losses=aux, gate_macs=self.macs_per_sample())

    def _smooth_load(self, clean: Tensor, noisy: Tensor, noise_std: Tensor, top_logits: Tensor) -> Tensor:
        """P(x, i): probability that expert i stays in the top-k under re-sampled noise (App. A, Eq. 9)."""
        k = self.k
        threshold_if_in = top_logits[:, k : k + 1]  # (k+1)-th largest: the bar when i is in the top-k
        threshold_if_out = top_logits[:, k - 1 : k]  # k-th largest: the bar when i is out
        is_in = noisy > threshold_if_in
        normal = torch.distributions.Normal(0.0, 1.0)
        prob_if_in = normal.cdf((clean - threshold_if_in) / noise_std)
        prob_if_out = normal.cdf((clean - threshold_if_out) / noise_std)
        return torch.where(is_in, prob_if_in, prob_if_out)

    def macs_per_sample(self) -> float:
        noise = self.d_in * self.n_experts if (self.training and self.w_noise is not None) else 0
        return float(self.d_in * self.n_experts + noise)
