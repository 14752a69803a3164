"""COMET tree gate (Ibrahim et al., KDD 2023, §3; official code ``model/gates/comet.py``).

k soft binary trees, each with n leaves (one per expert) and n-1 internal nodes laid
out as a complete binary tree (node i has children 2i+1, 2i+2; index >= n-1 is leaf
l = index-(n-1)), so depth = ceil(log2 n) and any n >= 2 works.

Tree j, internal node i: left probability S(w_ij·x + b_ij) (smooth-step, width γ).
Leaf reach probability μ_jl(x) = Π over the root->leaf path of S or 1-S.
Leaf logit o_jl(x) = a_jl·x + c_jl, score s_jl = o_jl + log μ_jl.

    g_l(x) = Σ_j μ_jl e^{o_jl} / Σ_{j',l'} μ_j'l' e^{o_j'l'}        (one joint softmax over k·n)

g is on the simplex, and when every tree routes hard (μ_j one-hot) g has <= k nonzeros.
Entropy regulariser: λ Σ_l mean_batch Σ_j −μ_jl log(μ_jl + 1e-6).

Searchable depth (``tree_depth`` = d > 0, our extension; d = 0 is the paper's tree above): a full
tree of L = 2^d leaves whose (leaf, expert) pairs p = (l(p), e(p)) map leaves onto experts in
contiguous blocks (:func:`leaf_experts`); each pair has its own logit o_jp and

    g_e(x) = Σ_j Σ_{p: e(p)=e} μ_{j,l(p)} e^{o_jp} / Σ_{j',p'} μ_{j',l(p')} e^{o_j'p'}

which is the formula above when pairs are the identity. With L < n a hard-routed tree reaches a
leaf holding several experts, which all get weight, so at most k·ceil(n/L) experts run.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gatesearch.models.entropy import entropy
from gatesearch.models.gates.base import Gate, RouteContext, Routing, register_gate
from gatesearch.models.gates.comet_config import (  # noqa: F401 - re-exported
    CometGateConfig,
    effective_tree_depth,
    leaf_experts,
    tree_depth,
)
from gatesearch.models.gates.smooth import smooth_step


def leaf_paths(n: int) -> tuple[Tensor, Tensor]:
    """Root->leaf paths of the complete binary tree with n leaves.

    Returns:
        nodes ``(n, depth)`` int64 internal-node index per level (padding = n-1, a
        dummy node whose left probability is 1), and left ``(n, depth)`` float: 1 where
        the path goes left at that node (or is padding), 0 where it goes right.
    """
    depth = tree_depth(n)
    nodes = torch.full((n, depth), n - 1, dtype=torch.long)
    left = torch.ones(n, depth)
    for leaf in range(n):
        idx, path = leaf + n - 1, []
        while idx > 0:
            parent = (idx - 1) // 2
            path.append((parent, 1.0 if idx == 2 * parent + 1 else 0.0))
            idx = parent
        for level, (node, is_left) in enumerate(reversed(path)):
            nodes[leaf, level], left[leaf, level] = node, is_left
    return nodes, left


@register_gate("comet", CometGateConfig)
class CometGate(Gate):
    def __init__(self, config: CometGateConfig, *, d_in: int, n_experts: int, num_ids: int | None = None):
        super().__init__()
        if n_experts < 2:
            raise ValueError("comet needs n_experts >= 2")
        self.config, self.n_experts, self.d_in, self.k = config, n_experts, d_in, config.k
        self.depth = effective_tree_depth(config, n_experts)
        # the paper's tree (tree_depth 0): n leaves, one per expert; else a full tree of 2^d leaves
        L = n_experts if config.tree_depth == 0 else 2**config.tree_depth
        pairs = leaf_experts(L, n_experts)  # the identity when L == n
        self.n_leaves, self.n_pairs = L, len(pairs)
        k, g = config.k, config.gamma
        self.nodes = nn.Linear(d_in, k * (L - 1), bias=config.node_bias)
        self.leaves = nn.Linear(d_in, k * self.n_pairs)
        # Init (official code): hyperplanes U(-γ/100, γ/100) so S starts in its smooth
        # region; leaf logits U(-0.05, 0.05).
        nn.init.uniform_(self.nodes.weight, -g / 100, g / 100)
        if config.node_bias:
            nn.init.uniform_(self.nodes.bias, -g / 100, g / 100)
        nn.init.uniform_(self.leaves.weight, -0.05, 0.05)
        nn.init.uniform_(self.leaves.bias, -0.05, 0.05)
        path_nodes, path_left = leaf_paths(L)
        self.register_buffer("path_nodes", path_nodes)
        self.register_buffer("path_left", path_left)
        self.register_buffer("pair_leaf", torch.tensor([p[0] for p in pairs], dtype=torch.long))
        self.register_buffer("pair_expert", torch.tensor([p[1] for p in pairs], dtype=torch.long))
        self.identity_pairs = L == n_experts  # skip the pair gather/scatter

    def reach_probabilities(self, x: Tensor) -> Tensor:
        """μ ``(B, k, L)``: probability that each tree routes x to each leaf."""
        B, k, n = x.shape[0], self.k, self.n_leaves
        s = smooth_step(self.nodes(x).view(B, k, n - 1), self.config.gamma)
        s = torch.cat([s, s.new_ones(B, k, 1)], dim=-1)  # dummy node n-1: S = 1
        s_path = s[:, :, self.path_nodes]  # (B, k, n, depth)
        left = self.path_left
        return (left * s_path + (1 - left) * (1 - s_path)).prod(dim=-1)

    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:
        B, k, P = x.shape[0], self.k, self.n_pairs
        mu = self.reach_probabilities(x)  # (B, k, L)
        o = self.leaves(x).view(B, k, P)
        # log μ with exact -inf where μ = 0 (unreachable leaves get exactly zero weight);
        # the clamp keeps the unused branch's gradient finite.
        log_mu = torch.where(mu > 0, torch.log(mu.clamp_min(1e-38)), torch.full_like(mu, -math.inf))
        if not self.identity_pairs:
            log_mu = log_mu[:, :, self.pair_leaf]  # (B, k, P)
        scores = (o + log_mu).reshape(B, k * P)
        pair_weights = scores.softmax(dim=-1).view(B, k, P).sum(dim=1)  # joint softmax, then sum over trees
        if self.identity_pairs:
            weights = pair_weights
        else:  # sum the pairs of each expert
            weights = pair_weights.new_zeros(B, self.n_experts).index_add(1, self.pair_expert, pair_weights)
        aux = {}
        if self.config.entropy_weight > 0:
            leaf_entropy = entropy(mu, dim=None)  # (B, k, n) elementwise terms
            aux["entropy"] = self.config.entropy_weight * leaf_entropy.sum(dim=1).mean(dim=0).sum()
        return Routing(weights=weights, aux_losses=aux, gate_macs=self.macs_per_sample())

    def macs_per_sample(self) -> float:
        # k(L-1) hyperplanes + k·P pair logits, all evaluated densely: d·k·(L-1+P)
        # (the paper's tree: L = P = n, d·k·(2n-1)).
        return float(self.d_in * self.k * (self.n_leaves - 1 + self.n_pairs))
