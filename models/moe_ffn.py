"""A token-level MoE feed-forward layer to drop into any transformer block.

    y_t = Σ_i g_i(x_t) f_i(x_t)        for every token x_t of a ``(B, T, d_model)`` input

(Shazeer et al. 2017; the Switch/GShard FFN replacement). Every token is routed on its own by
any registered gate (Top-k/Switch, Hash on token ids, DSelect-k, COMET, softmax, DTS), with the
permutation local search optionally attached, optional expert capacity with token dropping
(:mod:`~gatesearch.models.capacity`) and optionally EvoMoE's shared-expert phase and spawning
(:mod:`~gatesearch.models.evomoe`). Dispatch is sparse: tokens are grouped by expert and each
expert runs one matmul pair on its tokens only (:class:`~gatesearch.models.moe.MoELayer`).

Usage in a pre-LN block (the layer is the FFN; its auxiliary losses go into the loss)::

    moe = MoEFeedForward(d_model=256, d_hidden=1024, n_experts=8, gate=TopKGateConfig(k=2))
    out = moe(ln2(h), step=step)                 # MoEFeedForwardOutput
    h = h + out.output
    loss = task_loss + out.aux_loss()

Call :meth:`MoEFeedForward.advance` with the step before each optimisation step (local search
hardening, EvoMoE spawning); pass ``step`` to forward (gate schedules read it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gatesearch.models.evomoe import spawn_experts
from gatesearch.models.evomoe_config import EvoMoEConfig
from gatesearch.models.experts import ExpertBank
from gatesearch.models.gates.base import RouteContext, Routing, build_gate
from gatesearch.models.gates.contract import GateConfig, experts_per_row
from gatesearch.models.gates.local_search import LocalSearchConfig, PermutationLocalSearch
from gatesearch.models.gates.registry import gate_configs
from gatesearch.models.gates.topk_config import TopKGateConfig
from gatesearch.models.moe import MoELayer


@dataclass(frozen=True)
class MoEFeedForwardOutput:
    """Result of one :class:`MoEFeedForward` call.

    Attributes:
        output: ``(B, T, d_model)``.
        routing: the gate's :class:`Routing` over the ``B·T`` tokens (row = token, batch-major),
            after capacity: ``routing.load`` (share of tokens per expert),
            ``routing.dropped_fraction``, ``routing.stats()`` (active experts per token, ...).
        macs_per_token: MACs spent per token in the gate and the dispatched experts.
    """

    output: Tensor
    routing: Routing
    macs_per_token: float

    def aux_loss(self) -> Tensor:
        """The gate's auxiliary losses (already weighted), summed: add it to the task loss."""
        return self.routing.aux_loss()

    @property
    def active_experts(self) -> float:
        """Mean number of experts run per token."""
        return float(self.routing.mask.sum(dim=1).float().mean().item())


class MoEFeedForward(nn.Module):
    """Token-level MoE FFN: ``(B, T, d_model) -> (B, T, d_model)``.

    Args:
        d_model: token width (input and output).
        d_hidden: each expert's hidden width (a dense FFN's ``4·d_model`` is the usual choice).
        n_experts: number of experts.
        gate: a registered gate config (default ``TopKGateConfig(k=2)``; ``k=1`` is Switch).
        local_search: attach the permutation local search (COMET+) to the gate.
        capacity_factor: limit each expert to ``ceil(cf · assignments / n)`` tokens per batch
            and drop the rest (None: no limit).
        dropout: dropout inside the experts.
        activation: ``"gelu"`` (default, as in GPT/BERT FFNs) or ``"relu"``.
        evomoe: run EvoMoE's phase 1 (expert 0 alone, dense, no gate) for
            ``evomoe.share_steps`` steps, then spawn the other experts from it; the gate's
            schedules then count from the spawn (use a DTS gate, as the paper does).
        num_ids: vocabulary size, for the hash gate (which routes on ``token_ids``).
    """

    def __init__(self, d_model: int, d_hidden: int, n_experts: int, gate: GateConfig | None = None, *,
                 local_search: LocalSearchConfig | None = None, capacity_factor: float | None = None,
                 dropout: float = 0.0, activation: str = "gelu", evomoe: EvoMoEConfig | None = None,
                 num_ids: int | None = None):
        super().__init__()
        gate = TopKGateConfig(k=2) if gate is None else gate
        if not any(type(gate) is t for t in gate_configs().values()):
            raise TypeError(f"gate config {type(gate).__name__} is not registered; registered: {sorted(gate_configs())}")
        if n_experts < 2:
            raise ValueError(f"n_experts must be >= 2, got {n_experts}")
        experts_per_row(gate, n_experts)  # raises when the gate cannot route over n_experts (k > n)
        if min(d_model, d_hidden) < 1:
            raise ValueError("d_model and d_hidden must be >= 1")
        self.d_model, self.n_experts, self.evo = d_model, n_experts, evomoe
        router = build_gate(gate, d_in=d_model, n_experts=n_experts, num_ids=num_ids)
        if local_search is not None:
            router = PermutationLocalSearch(router, local_search)
        bank = ExpertBank(n_experts, d_model, d_hidden, d_model, dropout, activation=activation)
        self.moe = MoELayer(bank, [router], capacity_factor=capacity_factor)
        self.register_buffer("phase", torch.tensor(1 if evomoe is not None and evomoe.share_steps > 0 else 2))

    @property
    def gate(self) -> nn.Module:
        return self.moe.gates[0]

    @property
    def experts(self) -> ExpertBank:
        return self.moe.experts

    def advance(self, step: int) -> None:
        """Before optimisation step ``step``: harden the local search's permutation at its
        budget, and spawn EvoMoE's experts when phase 1 ends (each once)."""
        if int(self.phase) == 1 and step >= self.evo.share_steps:
            spawn_experts(self.experts, self.evo)
            self.phase.fill_(2)
        if isinstance(self.gate, PermutationLocalSearch):
            self.gate.advance(self._gate_step(step))

    def _gate_step(self, step: int) -> int:
        return max(0, step - self.evo.share_steps) if self.evo is not None else step

    def forward(self, x: Tensor, *, step: int = 0, token_ids: Tensor | None = None,
                dense: bool = False) -> MoEFeedForwardOutput:
        """Route every token of ``x`` ``(B, T, d_model)``.

        Args:
            step: the global optimisation step (gate schedules read it).
            token_ids: ``(B, T)`` int64, for the hash gate.
            dense: run every expert on every token (the reference path; same result).
        """
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            hint = "; for one vector per sample, pass x.unsqueeze(1) (T = 1)" if x.dim() == 2 else ""
            raise ValueError(f"expected (B, T, {self.d_model}), got {tuple(x.shape)}{hint}")
        B, T, d = x.shape
        flat = x.reshape(B * T, d)
        if int(self.phase) == 1:  # EvoMoE phase 1: the shared expert alone, no gate
            y = self.experts.run_one(0, flat)
            weights = flat.new_zeros(B * T, self.n_experts)
            weights[:, 0] = 1.0
            return MoEFeedForwardOutput(output=y.view(B, T, d), routing=Routing(weights=weights),
                                        macs_per_token=float(self.experts.macs_per_call()))
        ids = token_ids.reshape(B * T) if token_ids is not None else None
        out = self.moe(flat, RouteContext(step=self._gate_step(step), token_ids=ids), dense=dense)
        return MoEFeedForwardOutput(output=out.outputs[0].view(B, T, d), routing=out.routings[0],
                                    macs_per_token=out.macs_per_sample)

    def macs_per_token_dense(self) -> float:
        """MACs per token of the dense FFN with the same hidden width (one expert, no gate):
        the baseline a sparse layer is compared with."""
        return float(self.experts.macs_per_call())
