"""Dense-to-Sparse gate of EvoMoE (Nie et al., arXiv 2112.14397; code-exact to the released
``topkgate.py`` except where noted).

    h = W_g x                                       (no bias)
    ĝ = softmax((h + ζ) / τ_t),  ζ ~ Gumbel(0, 1)   (training; F.gumbel_softmax(hard=False))
    m_i = 1[ĝ_i > threshold]                        (soft phase: many experts while τ is high)
    m   = one_hot(argmax ĝ)                         (from ``switch_step`` on: top-1)
    g   = m ⊙ ĝ  (use_gumbel_gates)  or  m ⊙ softmax(h)
    l_aux = w · n² · mean_i(me_i · ce_i),  me = mean_rows g,  ce = mean_rows m   (balance loss)

Evaluation routes top-1 on h with weight 1 (our default). ``released_eval`` evaluates as the
released ``top1gate.py`` does: the combine weight is the top probability (so a row's weights sum to
p_max, not 1: the one place a gate leaves the simplex, on purpose), taken from a Gumbel-softmax at
the current τ when ``use_gumbel_gates`` (a stochastic evaluation), and each expert takes at most
ceil(0.25 · tokens) tokens (the rest dropped). τ_t follows :func:`dts_temperature` of the step the caller
passes in :class:`RouteContext` (no hidden counters), so the number of active experts per
token decays from n towards 1 as τ falls.

Switch semantics (as the released ``train.py``): ``switch_step = -1`` means top-1 routing from
the first update; ``s >= 0`` means from step s; ``None`` means never (the decay alone sparsifies).
The flat knob is ``switch_fraction`` (a fraction of the DTS phase, so it cannot be misread:
0 = from the first update, 1 = never).

Defaults: τ 2.0 -> 0.1 (exp) over ``tau_decay_epochs`` (4), but never past the switch at 0.8 of
the DTS phase (:func:`decay_length`): τ is at its floor when training turns top-1. The released defaults
(τ 1.0 -> 0.5 with switch = -1) train top-1 from the first update, so no dense-to-sparse decay
happens; with τ 1.0 -> 0.5 and no switch, about half the experts stay active (Gumbel-softmax
weights above the 1e-3 threshold at τ = 0.5). τ_min = 0.1 makes the Gumbel-softmax nearly
one-hot, so training reaches about one active expert per token before the switch, which is the
decay the paper describes (measured in docs/benchmarks/evomoe.md).

Deviation (documented): the released gate leaves g = m ⊙ ĝ unnormalised; our gate contract
puts every row on the simplex, so the combine weights are g renormalised *straight-through*:
their value is g / Σg, their gradient is g's, so the router gets the released gradient for the
same upstream gradient in both phases (tested). (Dividing by the detached row sum instead, as
before, kept the released gradient only in the soft phase, where Σg ≈ 1: in the top-1 phase it
scaled each row's gradient by 1/ĝ_max, measured cosine 0.94-0.98 and 1.6-2.5x the norm.) The
upstream gradient itself is taken at the renormalised output, which differs from the released
output by the factor Σg (ĝ_max in the top-1 phase).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatesearch.models.capacity import apply_capacity
from gatesearch.models.gates.base import Gate, RouteContext, Routing, register_gate
from gatesearch.models.gates.dts_config import DECAYS, DTSGateConfig  # noqa: F401 - re-exported

#: the released evaluation's expert capacity, a share of the tokens (``moe_eval_capacity_token_fraction``):
#: ceil(0.25 x tokens) = apply_capacity's ceil(cf x assignments / n) with cf = 0.25 n, one assignment a token
RELEASED_EVAL_CAPACITY = 0.25


def decay_length(cfg: DTSGateConfig) -> int:
    """D, the step at which τ reaches τ_min: ``decay_steps``, but never after the switch to top-1
    (``switch_step`` > 0), so the decay, not the switch, does the sparsifying. (With a fixed
    ``tau_decay_epochs`` of 4 and a short DTS phase, e.g. ``evomoe_lm_shakespeare``'s 750 steps,
    the switch came at τ = 0.33, where an untrained gate still runs ~4.5 of 8 experts.) A switch
    from the first update (-1) or none leaves D as it is. Not in the released code, whose default
    has no decay at all (see the deviations in docs/methods.md)."""
    if cfg.switch_step is not None and cfg.switch_step > 0:
        return max(1, min(cfg.decay_steps, cfg.switch_step))
    return cfg.decay_steps


def dts_temperature(step: int, cfg: DTSGateConfig) -> float:
    """τ at ``step`` (EvoMoE ``fairseq_cli/train.py``; D = :func:`decay_length`):

    exp:    τ_t = max(τ_max · exp(t · ln(τ_min/τ_max) / D), τ_min)
    linear: τ_t = max(τ_max − t · (τ_max − τ_min) / D, τ_min)
    """
    t, d = max(0, int(step)), decay_length(cfg)
    if cfg.decay == "exp":
        tau = cfg.tau_max * math.exp(t * math.log(cfg.tau_min / cfg.tau_max) / d)
    else:
        tau = cfg.tau_max - t * (cfg.tau_max - cfg.tau_min) / d
    return max(tau, cfg.tau_min)


@register_gate("dts", DTSGateConfig)
class DTSGate(Gate):
    def __init__(self, config: DTSGateConfig, *, d_in: int, n_experts: int, num_ids: int | None = None):
        super().__init__()
        self.config, self.n_experts, self.d_in = config, n_experts, d_in
        self.w_gate = nn.Linear(d_in, n_experts, bias=False)

    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:
        cfg = self.config
        h = self.w_gate(x)
        if not self.training:  # evaluation: top-1 on h
            if cfg.released_eval and cfg.use_gumbel_gates:  # released: top-1 of a Gumbel-softmax at τ_t
                probs = F.gumbel_softmax(h, tau=dts_temperature(ctx.step, cfg), hard=False)
            else:
                probs = h.softmax(dim=-1)
            top_val, top_idx = probs.max(dim=-1, keepdim=True)
            if cfg.released_eval:  # combined with the top probability, capacity ceil(0.25 x tokens)
                routing = Routing(weights=torch.zeros_like(probs).scatter(1, top_idx, top_val),
                                  gate_macs=self.macs_per_sample())
                return apply_capacity(routing, RELEASED_EVAL_CAPACITY * self.n_experts)
            weights = torch.zeros_like(probs).scatter(1, top_idx, top_val) / top_val.detach()
            return Routing(weights=weights, gate_macs=self.macs_per_sample())
        tau = dts_temperature(ctx.step, cfg)
        g_hat = F.gumbel_softmax(h, tau=tau, hard=False)
        if cfg.switch_step is not None and ctx.step >= cfg.switch_step:  # -1: from the first update
            mask = F.one_hot(g_hat.argmax(dim=-1), self.n_experts).to(g_hat.dtype)
        else:
            mask = (g_hat > cfg.threshold).to(g_hat.dtype)
            # at least the argmax stays active (a row never routes nowhere)
            mask = torch.maximum(mask, F.one_hot(g_hat.argmax(dim=-1), self.n_experts).to(g_hat.dtype))
        g = mask * (g_hat if cfg.use_gumbel_gates else h.softmax(dim=-1))
        # straight-through renormalisation: the value is on the simplex (our contract), the
        # gradient is exactly the released g's (in the soft phase and in the top-1 phase)
        weights = g + (g / g.sum(dim=-1, keepdim=True) - g).detach()
        aux = {}
        if cfg.balance_weight > 0:
            me, ce = g.mean(dim=0), mask.mean(dim=0)
            aux["balance"] = cfg.balance_weight * self.n_experts**2 * (me * ce).mean()
        return Routing(weights=weights, aux_losses=aux, gate_macs=self.macs_per_sample())

    def macs_per_sample(self) -> float:
        return float(self.d_in * self.n_experts)
