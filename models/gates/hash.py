"""Hash routing (Roller et al. 2021): a fixed id -> expert table, no parameters, k = 1.

``random``: each id gets an expert drawn uniformly (COMET's "Hash-r").
``balanced``: ids sorted by decreasing frequency are assigned greedily to the least
loaded expert (Roller et al. §3, "Balanced assignment"); without frequencies every id
counts once, which gives a round-robin over a seeded shuffle.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from gatesearch.models.gates.base import Gate, RouteContext, Routing, register_gate
from gatesearch.models.gates.hash_config import HASH_KINDS, HashGateConfig  # noqa: F401 - re-exported


def hash_table(num_ids: int, n_experts: int, kind: str, seed: int, counts: Sequence[int] | None = None) -> np.ndarray:
    """The ``(num_ids,)`` id -> expert table."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, n_experts, size=num_ids)
    freq = np.ones(num_ids) if counts is None else np.asarray(counts, dtype=float)
    if freq.shape != (num_ids,):
        raise ValueError(f"hash: id_counts has {freq.size} entries, expected num_ids={num_ids}")
    order = rng.permutation(num_ids)
    order = order[np.argsort(-freq[order], kind="stable")]
    load = np.zeros(n_experts)
    table = np.empty(num_ids, dtype=np.int64)
    for i in order:  # greedy: heaviest remaining id to the least-loaded expert
        e = int(np.argmin(load))
        table[i] = e
        load[e] += freq[i]
    return table


@register_gate("hash", HashGateConfig)
class HashGate(Gate):
    def __init__(self, config: HashGateConfig, *, d_in: int, n_experts: int, num_ids: int | None = None):
        super().__init__()
        if not num_ids or num_ids < 1:
            raise ValueError("hash: the objective must provide num_ids (size of the hashed id vocabulary)")
        self.config, self.n_experts, self.num_ids = config, n_experts, num_ids
        table = hash_table(num_ids, n_experts, config.kind, config.seed, config.id_counts)
        self.register_buffer("table", torch.as_tensor(table, dtype=torch.long))

    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:
        if ctx.token_ids is None:
            raise ValueError("hash gate needs RouteContext.token_ids")
        expert = self.table[ctx.token_ids.long() % self.num_ids]
        weights = torch.zeros(x.shape[0], self.n_experts, dtype=x.dtype, device=x.device)
        weights.scatter_(1, expert[:, None], 1.0)
        return Routing(weights=weights, gate_macs=0.0)

    def macs_per_sample(self) -> float:
        return 0.0
