"""A small decoder-only transformer LM whose FFN is a token-level MoE in every m-th block.

Pre-LayerNorm blocks (GPT-2 style): ``h += Attn(LN(h))``, ``h += FFN(LN(h))``, causal multi-head
self-attention, learned positional embeddings, a final LayerNorm and a linear head tied to the
token embedding. Block ``i`` (0-based) has a :class:`~gatesearch.models.moe_ffn.MoEFeedForward`
when ``(i + 1) % moe_every == 0`` (``moe_every = 1``: every block; 2: every second block, as in
GShard/Switch), otherwise a dense FFN of the same hidden width (GELU).

Compute (MACs per token, what ``torch.utils.flop_counter`` counts on the ``math`` attention path):
    per block: 4·d² (q, k, v, output projections) + 2·T·d (Q·Kᵀ and A·V over the full T×T
    score matrix, masked entries included) + FFN (dense: 2·d·h; MoE: gate + dispatched experts);
    plus d·V for the head. Embeddings, LayerNorm, softmax and biases are not counted.
``attention="sdpa"`` (default on CUDA) runs ``F.scaled_dot_product_attention`` (flash kernels,
same result); the count stays the matmul attention's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatesearch.models.evomoe_config import EvoMoEConfig
from gatesearch.models.gates.contract import GateConfig
from gatesearch.models.gates.local_search_config import LocalSearchConfig
from gatesearch.models.gates.registry import gate_configs
from gatesearch.models.gates.topk_config import TopKGateConfig
from gatesearch.models.moe_ffn import MoEFeedForward

ATTENTION = ("auto", "math", "sdpa")
#: how the MoE layers' auxiliary losses combine (see MoETransformerConfig.aux_combine)
AUX_COMBINE = ("sum", "average")


@dataclass(frozen=True)
class MoETransformerConfig:
    """Architecture of :class:`MoETransformerLM`.

    Attributes:
        vocab: number of token ids.
        context: maximum sequence length T (positional embeddings).
        n_layers, n_heads, d_head: blocks, attention heads and head width (d_model = n_heads·d_head).
        ffn_mult: FFN hidden width = ffn_mult·d_model (dense FFNs and every expert).
        moe_every: block i has an MoE FFN when (i + 1) % moe_every == 0.
        n_experts: experts per MoE FFN.
        gate: a registered gate config (default Top-2).
        local_search: permutation local search on every MoE gate.
        capacity_factor: expert capacity (None: no limit).
        evomoe: EvoMoE's shared phase and spawning in every MoE FFN.
        dropout: on attention output, FFN hidden (inside experts too) and embeddings.
        attention: ``math`` (matmuls; counted exactly), ``sdpa`` or ``auto`` (sdpa on CUDA).
        aux_combine: how the MoE layers' auxiliary losses add up: ``sum`` (ours) or ``average``
            (released EvoMoE: ``gate_loss_combine_method="average"``).
    """

    vocab: int
    context: int = 64
    n_layers: int = 2
    n_heads: int = 2
    d_head: int = 32
    ffn_mult: int = 4
    moe_every: int = 1
    n_experts: int = 8
    gate: GateConfig = field(default_factory=lambda: TopKGateConfig(k=2))
    local_search: LocalSearchConfig | None = None
    capacity_factor: float | None = None
    evomoe: EvoMoEConfig | None = None
    dropout: float = 0.0
    attention: str = "auto"
    aux_combine: str = "sum"

    def __post_init__(self) -> None:
        if min(self.vocab, self.context, self.n_layers, self.n_heads, self.d_head, self.ffn_mult, self.moe_every) < 1:
            raise ValueError("vocab, context, n_layers, n_heads, d_head, ffn_mult and moe_every must be >= 1")
        if self.moe_every > self.n_layers:
            raise ValueError(f"moe_every={self.moe_every} > n_layers={self.n_layers}: no block would be MoE")
        if not any(type(self.gate) is t for t in gate_configs().values()):
            raise TypeError(f"gate config {type(self.gate).__name__} is not registered")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {self.attention!r}")
        if self.aux_combine not in AUX_COMBINE:
            raise ValueError(f"aux_combine must be one of {AUX_COMBINE}, got {self.aux_combine!r}")

    @property
    def d_model(self) -> int:
        return self.n_heads * self.d_head

    def is_moe(self, block: int) -> bool:
        return (block + 1) % self.moe_every == 0


@dataclass(frozen=True)
class LMOutput:
    """Logits ``(B, T, vocab)``, the MoE blocks' routing, and compute of the call."""

    logits: Tensor
    routings: list
    aux_loss: Tensor
    macs_per_token: float
    active_experts: float  # mean experts run per token per MoE block (0 without MoE blocks)


def matmul_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, dropout: float = 0.0,
                     training: bool = False) -> Tensor:
    """softmax(Q·Kᵀ/√dh [+ causal mask]) · V over ``(B, H, T, dh)`` heads with explicit matmuls
    (what the flop counter sees; dropout on the attention weights)."""
    T = q.shape[-2]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return F.dropout(scores.softmax(dim=-1), dropout, training) @ v


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: MoETransformerConfig):
        super().__init__()
        d = cfg.d_model
        self.n_heads, self.d_head, self.attention, self.dropout = cfg.n_heads, cfg.d_head, cfg.attention, cfg.dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: Tensor) -> Tensor:
        B, T, d = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # 3 × (B, H, T, dh)
        p = self.dropout if self.training else 0.0
        if self.attention == "sdpa" or (self.attention == "auto" and x.is_cuda):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:
            y = matmul_attention(q, k, v, causal=True, dropout=p, training=self.training)
        return self.proj(y.transpose(1, 2).reshape(B, T, d))


class Block(nn.Module):
    def __init__(self, cfg: MoETransformerConfig, moe: bool):
        super().__init__()
        d, h = cfg.d_model, cfg.ffn_mult * cfg.d_model
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        if moe:
            self.ffn: nn.Module = MoEFeedForward(d, h, cfg.n_experts, cfg.gate, local_search=cfg.local_search,
                                                 capacity_factor=cfg.capacity_factor, dropout=cfg.dropout,
                                                 evomoe=cfg.evomoe, num_ids=cfg.vocab)
        else:
            self.ffn = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(h, d))

    @property
    def is_moe(self) -> bool:
        return isinstance(self.ffn, MoEFeedForward)


class MoETransformerLM(nn.Module):
    """Decoder-only LM: ids ``(B, T)`` -> next-token logits ``(B, T, vocab)``."""

    def __init__(self, cfg: MoETransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok = nn.Embedding(cfg.vocab, d)
        self.pos = nn.Embedding(cfg.context, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, cfg.is_moe(i)) for i in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab, bias=False)
        self.head.weight = self.tok.weight  # tied (GPT-2)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    @property
    def moe_layers(self) -> list[MoEFeedForward]:
        return [b.ffn for b in self.blocks if b.is_moe]

    def advance(self, step: int) -> None:
        """Before optimisation step ``step``: local-search hardening, EvoMoE spawning."""
        for ffn in self.moe_layers:
            ffn.advance(step)

    def dense_macs_per_token(self, T: int) -> float:
        """MACs per token outside the MoE FFNs (attention, dense FFNs, head) at sequence length T."""
        d, h, cfg = self.cfg.d_model, self.cfg.ffn_mult * self.cfg.d_model, self.cfg
        per_block = 4 * d * d + 2 * T * d
        dense_ffn = sum(0 if cfg.is_moe(i) else 2 * d * h for i in range(cfg.n_layers))
        return float(cfg.n_layers * per_block + dense_ffn + d * cfg.vocab)

    def forward(self, ids: Tensor, *, step: int = 0, dense: bool = False) -> LMOutput:
        B, T = ids.shape
        if T > self.cfg.context:
            raise ValueError(f"sequence length {T} exceeds the context {self.cfg.context}")
        h = self.drop(self.tok(ids) + self.pos(torch.arange(T, device=ids.device)))
        routings, aux, moe_macs, active = [], [], 0.0, []
        for block in self.blocks:
            h = h + block.drop(block.attn(block.ln1(h)))
            x = block.ln2(h)
            if block.is_moe:
                out = block.ffn(x, step=step, token_ids=ids, dense=dense)
                h = h + out.output
                routings.append(out.routing)
                aux.append(out.aux_loss())
                moe_macs += out.macs_per_token
                active.append(out.active_experts)
            else:
                h = h + block.drop(block.ffn(x))
        logits = self.head(self.ln_f(h))
        aux_loss = torch.stack(aux).sum() if aux else logits.new_zeros(())
        if aux and self.cfg.aux_combine == "average":
            aux_loss = aux_loss / len(aux)
        return LMOutput(logits=logits, routings=routings, aux_loss=aux_loss,
                        macs_per_token=self.dense_macs_per_token(T) + moe_macs,
                        active_experts=sum(active) / len(active) if active else 0.0)
