"""Early-exit networks: a backbone of L blocks, an inference module (IM, a classifier) after
every block and, for JEI-DNN (Regol, Chataoui, Coates, ICLR 2024), a learned gate per
non-final exit. Compute accounting is exit-aware.

Gate (JEI-DNN GM):  g_l = σ(w_l · u_l + b_l),  u_l = [p_max, H(p), p_(1) − p_(2), H(p²/Σp²)]
                    of IM_l's softmax p, computed **detached** (the gate never backprops into
                    the IM), for l = 1..L−1.
Exit distribution (paper Eq. 8):
                    P_l = max(0, min(g_l, 1 − Σ_{j<l} g_j)),  l < L;   P_L = 1 − Σ_{l<L} P_l
Inference:          q_l = clip(P_l / Π_{j<l}(1 − q_j), 0, 1); exit at the first l with
                    q_l >= threshold (0.5 in the paper; a knob here), else at the final IM.
Cost:               C_l = Σ_{j<=l} (block_j + IM_j + gate_j) MACs (MSDNet op-counter convention:
                    a Linear costs in·out + out; a gate costs 9·C + 6 for its statistics and its
                    4-input linear unit, C = classes), so exiting at l pays for everything
                    evaluated up to l and nothing after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gatesearch.models.entropy import entropy


@dataclass(frozen=True)
class EarlyExitConfig:
    """Attributes:
        n_blocks: L backbone blocks (L IMs, L − 1 gates).
        hidden: width of every block.
        dropout: dropout after each block.
        exit_threshold: inference exits at the first l with conditional probability >= this.
    """

    n_blocks: int = 4
    hidden: int = 64
    dropout: float = 0.0
    exit_threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.n_blocks < 2 or self.hidden < 1:
            raise ValueError(f"early exit: need n_blocks >= 2 and hidden >= 1, got {self.n_blocks}, {self.hidden}")
        if not 0 < self.exit_threshold <= 1:
            raise ValueError(f"early exit: exit_threshold must be in (0, 1], got {self.exit_threshold}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"early exit: dropout must be in [0, 1), got {self.dropout}")


@torch.no_grad()
def uncertainty_features(logits: Tensor) -> Tensor:
    """The 4 detached uncertainty statistics of a classifier's softmax: ``(B, 4)``
    = [max prob, entropy, margin top1 − top2, entropy of the squared-renormalised probs]."""
    p = logits.detach().float().softmax(dim=-1)
    top2 = p.topk(2, dim=-1).values
    sq = p**2
    sq = sq / sq.sum(dim=-1, keepdim=True)
    return torch.stack([top2[:, 0], entropy(p, eps=1e-12), top2[:, 0] - top2[:, 1], entropy(sq, eps=1e-12)], dim=-1)


def exit_distribution(g: Tensor) -> Tensor:
    """Eq. 8: ``g`` ``(B, L−1)`` gate outputs in [0, 1] -> ``P`` ``(B, L)`` exit probabilities
    (rows sum to 1; the final exit takes the rest)."""
    before = torch.cumsum(g, dim=1) - g  # Σ_{j<l} g_j
    p = torch.clamp(torch.minimum(g, 1 - before), min=0.0)
    last = (1 - p.sum(dim=1, keepdim=True)).clamp_min(0.0)
    return torch.cat([p, last], dim=1)


def conditional_exit(p: Tensor) -> Tensor:
    """q_l = clip(P_l / Π_{j<l}(1 − q_j), 0, 1) for the non-final exits: ``(B, L−1)``."""
    qs, survive = [], torch.ones_like(p[:, 0])
    for l in range(p.shape[1] - 1):
        q = torch.where(survive > 1e-12, p[:, l] / survive.clamp_min(1e-12), torch.ones_like(survive)).clamp(0, 1)
        qs.append(q)
        survive = survive * (1 - q)
    return torch.stack(qs, dim=1)


@dataclass(frozen=True)
class ExitOutput:
    """Everything one forward pass computed (all exits are evaluated, for training/analysis).

    Attributes:
        logits: L tensors ``(B, C)``, one per IM.
        gate_logits: ``(B, L−1)`` pre-sigmoid gate outputs (None for a plain network).
        exit_probs: ``(B, L)`` P (None without gates).
    """

    logits: list[Tensor]
    gate_logits: Tensor | None
    exit_probs: Tensor | None


class EarlyExitNetwork(nn.Module):
    """MLP backbone with an IM after every block and (``gated=True``) a JEI-DNN gate per non-final exit.

    Other backbones (:class:`~gatesearch.models.vit.EarlyExitViT`) subclass it and override
    :meth:`block_outputs` (the features each IM reads), :meth:`block_costs` and
    :meth:`backbone_parameters`; the IMs, gates, exit rule and cost accounting are shared."""

    def __init__(self, config: EarlyExitConfig, *, d_in: int, n_classes: int, gated: bool = True):
        super().__init__()
        dims = [d_in] + [config.hidden] * config.n_blocks
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Dropout(config.dropout))
                                    for a, b in zip(dims[:-1], dims[1:]))
        self._heads(config, config.hidden, n_classes, gated)

    def _heads(self, config, width: int, n_classes: int, gated: bool) -> None:
        """The IMs (LayerNorm + linear on ``width`` features) and, when ``gated``, the gates."""
        self.config, self.n_classes, self.gated = config, n_classes, gated
        self.ims = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_classes))
                                 for _ in range(config.n_blocks))
        self.gates = nn.ModuleList(nn.Linear(4, 1) for _ in range(config.n_blocks - 1)) if gated else None

    @property
    def n_exits(self) -> int:
        return self.config.n_blocks

    def backbone_parameters(self):
        return [p for b in self.blocks for p in b.parameters()]

    def im_parameters(self):
        return [p for m in self.ims for p in m.parameters()]

    def gate_parameters(self):
        return [p for g in self.gates for p in g.parameters()] if self.gates is not None else []

    def stem(self, x: Tensor) -> Tensor:
        """The state the first block reads (the MLP: the input itself)."""
        return x

    def features(self, h: Tensor) -> Tensor:
        """What an IM reads from the state after a block, ``(B, width)`` (the MLP: the state)."""
        return h

    def block_outputs(self, x: Tensor) -> Iterator[Tensor]:
        """The features after each block, ``(B, width)``, in order (what the IMs read)."""
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
            yield self.features(h)

    @torch.no_grad()
    def infer(self, x: Tensor, threshold: float | None = None) -> tuple[Tensor, Tensor]:
        """Inference as deployed: each row stops at its exit and only the rows still going run the
        next block. JEI-DNN's rule, computed as the rows go (the same decisions as
        ``exits(forward(x))``: Eq. 8's exit distribution and its conditional exit probabilities, per
        row); a network without gates runs every row to the last exit. Returns the ``(B, n_classes)``
        logits at each row's exit and the ``(B,)`` exit index."""
        thr = self.config.exit_threshold if threshold is None else threshold
        h, rows = self.stem(x), torch.arange(x.shape[0], device=x.device)
        logits = torch.empty(x.shape[0], self.n_classes, device=x.device)
        exits = torch.full((x.shape[0],), self.n_exits - 1, dtype=torch.long, device=x.device)
        before = torch.zeros(x.shape[0], device=x.device)  # the gates' sum so far (Eq. 8)
        survive = torch.ones(x.shape[0], device=x.device)  # the product of (1 - q_j) so far
        for l, (block, im) in enumerate(zip(self.blocks, self.ims)):
            h = block(h)
            lg = im(self.features(h))
            if l == self.n_exits - 1:
                logits[rows] = lg.float()
                break
            if not self.gated:  # no gates: every row runs to the last exit
                continue
            g = self.gates[l](uncertainty_features(lg)).sigmoid().squeeze(1)
            p = torch.clamp(torch.minimum(g, 1 - before), min=0.0)
            q = torch.where(survive > 1e-12, p / survive.clamp_min(1e-12), torch.ones_like(survive)).clamp(0, 1)
            out = q >= thr
            logits[rows[out]], exits[rows[out]] = lg[out].float(), l
            keep = ~out
            h, rows, lg = h[keep], rows[keep], lg[keep]
            before, survive = before[keep] + g[keep], survive[keep] * (1 - q[keep])
            if not len(rows):
                break
        return logits, exits

    def block_costs(self) -> list[float]:
        """MACs per sample of each block on its own (a Linear costs in·out + out)."""
        return [float(b[0].in_features * b[0].out_features + b[0].out_features) for b in self.blocks]

    def exit_costs(self) -> list[float]:
        """C_l: cumulative MACs per sample when exiting at l (blocks + IMs + gates so far)."""
        costs, total, c = [], 0.0, self.n_classes
        for l, (block_cost, im) in enumerate(zip(self.block_costs(), self.ims)):
            total += block_cost
            head = im[1]
            total += 2.5 * head.in_features  # LayerNorm
            total += head.in_features * head.out_features + head.out_features
            if self.gated and l < self.n_exits - 1:
                total += 9 * c + 6
            costs.append(total)
        return costs

    def forward(self, x: Tensor) -> ExitOutput:
        logits = [im(h) for im, h in zip(self.ims, self.block_outputs(x))]
        if not self.gated:
            return ExitOutput(logits=logits, gate_logits=None, exit_probs=None)
        gate_logits = torch.cat([gate(uncertainty_features(lg)) for gate, lg in zip(self.gates, logits[:-1])], dim=1)
        return ExitOutput(logits=logits, gate_logits=gate_logits, exit_probs=exit_distribution(gate_logits.sigmoid()))

    @torch.no_grad()
    def exits(self, out: ExitOutput, threshold: float | None = None) -> Tensor:
        """``(B,)`` int64 exit index per row: the first l with q_l >= threshold, else L − 1."""
        if out.exit_probs is None:
            raise ValueError("exits() needs a gated network; use a confidence threshold for plain networks")
        return first_exit(out.exit_probs, self.config.exit_threshold if threshold is None else threshold)


def first_exit(exit_probs: Tensor, threshold: float) -> Tensor:
    """``(B,)`` int64: the first l whose conditional exit probability q_l >= ``threshold``,
    else the final exit L − 1 (``exit_probs`` is ``(B, L)`` P from :func:`exit_distribution`)."""
    hit = conditional_exit(exit_probs) >= threshold
    final = torch.full_like(hit[:, 0], hit.shape[1], dtype=torch.long)
    return torch.where(hit.any(dim=1), hit.float().argmax(dim=1), final).long()


def per_exit_ce(logits: list[Tensor], y: Tensor) -> Tensor:
    """``(B, L)`` cross-entropy of every exit."""
    return torch.stack([F.cross_entropy(lg, y, reduction="none") for lg in logits], dim=1)
