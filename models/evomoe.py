"""EvoMoE (Nie et al., arXiv 2112.14397): expert-diversify, then gate-sparsify.

Phase 1 (steps ``< share_steps``): ONE shared expert (expert 0 of the bank) runs on every
row, with no gate — a dense FFN. At ``share_steps`` the other experts are **spawned** from it
(:func:`spawn_experts`) and phase 2 trains the MoE with the DTS gate, whose temperature
schedule starts at the beginning of phase 2 (the gate sees ``step - share_steps``).

Diversification (the paper's masking; the ratio is not in the released code, so it is a knob):
    copy:  E_i = W                                   (identical copies; the gate must split them)
    noise: E_i = W + σ·std(W)·ε_i,  ε_i ~ N(0, 1)    (per-tensor relative Gaussian noise)
    mask:  E_i = W ⊙ M_i,  M_i ~ Bernoulli(1 − r)    (fresh random mask per expert, ratio r zeroed)
Expert 0 keeps W unchanged under noise and mask, so phase 2 starts from the trained expert.

The phase is a buffer (it travels with ``state_dict``); the schedule is driven by the step the
trainer passes to :meth:`advance` — no hidden counters.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from gatesearch.models.evomoe_config import DIVERSIFY, EvoMoEConfig  # noqa: F401 - re-exported
from gatesearch.models.experts import ExpertBank
from gatesearch.models.gates.base import RouteContext, Routing
from gatesearch.models.network import MoENetwork, MoENetworkConfig, NetworkOutput


@torch.no_grad()
def spawn_experts(bank: ExpertBank, cfg: EvoMoEConfig, source: int = 0) -> None:
    """Overwrite every expert of ``bank`` with a diversified copy of expert ``source``."""
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    for p in (bank.w1, bank.b1, bank.w2, bank.b2):
        w = p.data[source].clone()
        for e in range(bank.n_experts):
            if e == source or cfg.diversify == "copy":
                p.data[e].copy_(w)
            elif cfg.diversify == "noise":
                eps = torch.randn(w.shape, generator=gen).to(w)
                # population std (0 for a 1-element tensor, e.g. a width-1 bias; the sample std would be NaN)
                p.data[e].copy_(w + cfg.noise_std * w.std(correction=0).clamp_min(1e-8) * eps)
            else:
                keep = (torch.rand(w.shape, generator=gen) >= cfg.mask_ratio).to(w)
                p.data[e].copy_(w * keep)


class EvoMoENetwork(MoENetwork):
    """A :class:`MoENetwork` (DTS gate expected) with EvoMoE's shared-expert phase."""

    def __init__(self, config: MoENetworkConfig, evo: EvoMoEConfig, *, d_in: int, n_outputs: Sequence[int],
                 num_ids: int | None = None):
        super().__init__(config, d_in=d_in, n_outputs=n_outputs, num_ids=num_ids)
        self.evo = evo
        self.register_buffer("phase", torch.tensor(1 if evo.share_steps > 0 else 2))

    def advance(self, step: int) -> None:
        """Spawn the experts when phase 1 ends (once)."""
        super().advance(step)
        if int(self.phase) == 1 and step >= self.evo.share_steps:
            spawn_experts(self.moe.experts, self.evo)
            self.phase.fill_(2)

    def forward(self, x: Tensor, ctx: RouteContext, *, dense: bool = False) -> NetworkOutput:
        if int(self.phase) == 1:
            h = self.moe.experts.run_one(0, x)
            weights = x.new_zeros(x.shape[0], self.moe.experts.n_experts)
            weights[:, 0] = 1.0
            routing = Routing(weights=weights)
            logits = [tower(h) for tower in self.towers]
            return NetworkOutput(logits=logits, routings=[routing] * len(self.towers),
                                 macs_per_sample=float(self.moe.experts.macs_per_call()) + self.tower_macs(),
                                 active_experts=1.0)
        shifted = RouteContext(step=max(0, ctx.step - self.evo.share_steps), token_ids=ctx.token_ids)
        return super().forward(x, shifted, dense=dense)
