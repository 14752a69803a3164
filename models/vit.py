"""A small Vision Transformer backbone with an exit after every block (JEI-DNN's setting: the
paper's backbones are ViTs, its IMs read the CLS token).

Image (C, H, W), zero-padded on the right/bottom to a multiple of the patch size p, cut into
P = ceil(H/p)·ceil(W/p) patches, each flattened and linearly embedded; a learned CLS token and
learned positional embeddings make S = P + 1 tokens of width d = n_heads·d_head. Each block is
pre-LayerNorm: ``h += Attn(LN(h))``, ``h += MLP(LN(h))`` (GELU, width mlp_mult·d), bidirectional
multi-head attention. The IM after block l is LayerNorm + linear on the CLS token; JEI-DNN gates
and the exit rule are those of :class:`~gatesearch.models.early_exit.EarlyExitNetwork`.

Cost per image, MSDNet op-counter convention as for the MLP backbone (a Linear costs in·out + out
per token, a LayerNorm 2.5·d per token), plus attention's two matmuls over S×S per head:
    patch embedding  P·(p²·C·d + d)
    block            S·(2·2.5d + (3d² + 3d) + (d² + d) + (d·h + h) + (h·d + d)) + 2·S²·d
Softmax, GELU, the CLS/positional additions and the padding are not counted. The matmul part
(:meth:`EarlyExitViT.matmul_macs`) equals ``torch.utils.flop_counter`` (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatesearch.models.early_exit import EarlyExitNetwork
from gatesearch.models.transformer import matmul_attention


@dataclass(frozen=True)
class ViTExitConfig:
    """Attributes:
        n_blocks: transformer blocks L (an exit after each).
        n_heads, d_head: attention heads and head width (d = n_heads·d_head).
        patch: patch side p in pixels (the image is zero-padded to a multiple of p).
        mlp_mult: MLP hidden width = mlp_mult·d.
        dropout: on attention output and MLP hidden.
        exit_threshold: JEI-DNN inference exits at the first l with conditional probability >= this.
    """

    n_blocks: int = 4
    n_heads: int = 2
    d_head: int = 16
    patch: int = 7
    mlp_mult: int = 2
    dropout: float = 0.0
    exit_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.n_blocks < 2 or min(self.n_heads, self.d_head, self.patch, self.mlp_mult) < 1:
            raise ValueError("vit: need n_blocks >= 2 and n_heads, d_head, patch, mlp_mult >= 1")
        if not 0 < self.exit_threshold <= 1:
            raise ValueError(f"vit: exit_threshold must be in (0, 1], got {self.exit_threshold}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"vit: dropout must be in [0, 1), got {self.dropout}")

    @property
    def hidden(self) -> int:
        return self.n_heads * self.d_head


class ViTBlock(nn.Module):
    def __init__(self, d: int, n_heads: int, mlp_mult: int, dropout: float):
        super().__init__()
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc1, self.fc2 = nn.Linear(d, mlp_mult * d), nn.Linear(mlp_mult * d, d)

    def forward(self, h: Tensor) -> Tensor:
        B, S, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).view(B, S, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        y = matmul_attention(q, k, v, causal=False).transpose(1, 2).reshape(B, S, d)
        h = h + F.dropout(self.proj(y), self.dropout, self.training)
        return h + self.fc2(F.dropout(F.gelu(self.fc1(self.ln2(h))), self.dropout, self.training))


class EarlyExitViT(EarlyExitNetwork):
    """ViT backbone, an IM on the CLS token after every block, optional JEI-DNN gates.

    Input: flattened images ``(B, C·H·W)`` (as the data sets store them) or ``(B, C, H, W)``.
    """

    def __init__(self, config: ViTExitConfig, *, image: tuple[int, int, int], n_classes: int, gated: bool = True):
        nn.Module.__init__(self)
        c, height, width = image
        p, d = config.patch, config.hidden
        self.image, self.grid = image, (math.ceil(height / p), math.ceil(width / p))
        self.n_patches = self.grid[0] * self.grid[1]
        self.embed = nn.Linear(c * p * p, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, self.n_patches + 1, d) * 0.02)
        self.blocks = nn.ModuleList(ViTBlock(d, config.n_heads, config.mlp_mult, config.dropout)
                                    for _ in range(config.n_blocks))
        self._heads(config, d, n_classes, gated)

    def backbone_parameters(self):
        return [self.cls, self.pos, *self.embed.parameters(), *(p for b in self.blocks for p in b.parameters())]

    def patches(self, x: Tensor) -> Tensor:
        """``(B, P, C·p·p)`` flattened patches, row-major over the padded grid."""
        c, height, width = self.image
        p = self.config.patch
        x = x.reshape(x.shape[0], c, height, width)
        x = F.pad(x, (0, self.grid[1] * p - width, 0, self.grid[0] * p - height))
        x = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, gh, gw, p, p)
        return x.permute(0, 2, 3, 1, 4, 5).reshape(x.shape[0], self.n_patches, c * p * p)

    def stem(self, x: Tensor) -> Tensor:
        """The patch embeddings with the CLS token and the positions, ``(B, 1 + P, d)``."""
        h = self.embed(self.patches(x))
        return torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1) + self.pos

    def features(self, h: Tensor) -> Tensor:
        return h[:, 0]  # the CLS token

    def _costs(self, matmul_only: bool) -> tuple[float, list[float]]:
        c = self.image[0]
        p, d = self.config.patch, self.config.hidden
        h, S = self.config.mlp_mult * d, self.n_patches + 1
        bias = 0.0 if matmul_only else 1.0
        embed = self.n_patches * (p * p * c * d + bias * d)
        per_token = (3 * d * d + d * d + d * h + h * d) + bias * (2 * 2.5 * d + 3 * d + d + h + d)
        return embed, [S * per_token + 2 * S * S * d] * self.config.n_blocks

    def block_costs(self) -> list[float]:
        embed, blocks = self._costs(matmul_only=False)
        return [blocks[0] + embed] + blocks[1:]  # the embedding is paid with the first block

    def matmul_macs(self, exit_index: int) -> float:
        """Matmul MACs per image of everything up to and including IM ``exit_index`` when all
        exits are evaluated (what ``FlopCounterMode`` counts for a forward pass)."""
        embed, blocks = self._costs(matmul_only=True)
        n = exit_index + 1
        return embed + sum(blocks[:n]) + n * self.config.hidden * self.n_classes
