"""The comet gate's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gatesearch.models.gates.contract import check_k
from gatesearch.models.gates.registry import register_gate_config
from gatesearch.models.knobs import knob


def tree_depth(n_experts: int) -> int:
    """Depth of the complete binary tree with ``n_experts`` leaves: ceil(log2 n)."""
    return max(1, math.ceil(math.log2(n_experts)))


@dataclass(frozen=True)
class CometGateConfig:
    """COMET settings.

    Attributes:
        k: number of trees (max nonzeros).
        gamma: smooth-step width γ.
        entropy_weight: λ of the leaf-distribution entropy (batch mean).
        node_bias: hyperplanes have a bias term.
        tree_depth: 0 (default) = the paper's tree: ceil(log2 n) levels, one leaf per expert.
            d > 0 = a full tree of 2^d leaves over the n experts in contiguous blocks: with
            2^d > n several leaves lead to one expert (a finer partition of the input space);
            with 2^d < n a leaf holds several experts, which all run when a tree reaches it
            (a shallower, cheaper gate that activates more experts). See ``leaf_experts``.
    """

    k: int = knob(2, "comet: trees (max experts per sample)", low=1, high=256)
    gamma: float = knob(1.0, "comet: smooth-step width", low=1e-6, high=1e3)
    entropy_weight: float = knob(0.1, "comet: entropy regulariser λ", low=0.0, high=1e3)
    node_bias: bool = knob(True, "comet: hyperplanes have a bias")
    tree_depth: int = knob(0, "comet: tree depth; 0 = ceil(log2 n_experts), one leaf per expert (the paper); "
                           "d > 0 = 2^d leaves mapped onto the experts in contiguous blocks (2^d > n: several "
                           "leaves per expert; 2^d < n: several experts per leaf, all run)", low=0, high=10)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"comet: k must be >= 1, got {self.k}")
        if self.gamma <= 0:
            raise ValueError(f"comet: gamma must be > 0, got {self.gamma}")
        if self.entropy_weight < 0:
            raise ValueError("comet: entropy_weight must be >= 0")
        if not 0 <= self.tree_depth <= 10:
            raise ValueError(f"comet: tree_depth must be in [0, 10] (0 = derived from n_experts), got {self.tree_depth}")

    def experts_per_row(self, n_experts: int) -> int:
        """``k`` for the paper's tree and whenever every leaf holds one expert (2^d >= n); with
        fewer leaves than experts a hard-routed tree reaches a leaf of up to ceil(n / 2^d) experts,
        which all run: ``min(n, k * ceil(n / 2^d))``. ``k > n_experts`` is an error."""
        check_k(self.k, n_experts)
        leaves = n_experts if self.tree_depth == 0 else 2**self.tree_depth
        if leaves >= n_experts:
            return self.k
        return min(n_experts, self.k * math.ceil(n_experts / leaves))

    def derived(self, n_experts: int) -> dict[str, int]:
        """The depth of the trees over ``n_experts`` experts (``tree_depth``, or ceil(log2 n) for
        0), logged as ``tree_depth_effective``."""
        return {"tree_depth_effective": effective_tree_depth(self, n_experts)}


def leaf_experts(n_leaves: int, n_experts: int) -> list[tuple[int, int]]:
    """The (leaf, expert) pairs of a tree with ``n_leaves`` leaves over ``n_experts`` experts,
    in contiguous blocks: each leaf and each expert appears at least once. Equal counts: the
    identity; more leaves: leaf l -> expert floor(l·n/L); fewer: expert e -> leaf floor(e·L/n)."""
    if n_leaves >= n_experts:
        return [(leaf, leaf * n_experts // n_leaves) for leaf in range(n_leaves)]
    return [(e * n_leaves // n_experts, e) for e in range(n_experts)]


def effective_tree_depth(config: "CometGateConfig", n_experts: int) -> int:
    """Levels of the gate's trees: ``config.tree_depth``, or ceil(log2 n) when it is 0."""
    return config.tree_depth or tree_depth(n_experts)


register_gate_config("comet", CometGateConfig)
