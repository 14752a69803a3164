"""The gate contract: what every router returns, and the registry of gates.

A gate maps input features ``x`` of shape ``(B, d)`` to a :class:`Routing`, whose
``weights`` are a ``(B, n)`` matrix on the probability simplex (every row sums to
one, entries >= 0). An exact zero means "expert not dispatched": the MoE layer runs
expert ``i`` only on the rows where ``weights[:, i] > 0``.

Extension, in one file: a frozen config dataclass (its searchable fields are
:func:`~gatesearch.models.knobs.knob` s; it says how many experts a row gets,
:class:`~gatesearch.models.gates.contract.GateConfig`), a :class:`Gate` subclass, and
``@register_gate(name, ConfigType)`` on the class. The registry rejects duplicate names. A file
in this package is found by :func:`~gatesearch.models.gates.registry.scan_gate_modules` (nothing
to list); a user's own module is named in the space file's ``plugins:``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import Tensor, nn

from gatesearch._registry import Registry
from gatesearch.models.gates.registry import (
    builtin_gate_modules,
    import_builtin,
    register_gate_config,
    unregister_gate_config,
)

#: Threshold below which a combine weight counts as "sparse" (COMET's avg_sparsity).
SPARSITY_EPS = 1e-5


@dataclass(frozen=True)
class RouteContext:
    """Inputs of a routing call that are not features.

    Attributes:
        step: global optimisation step (schedules read it; gates never count steps).
        token_ids: ``(B,)`` int64 ids of the hashed feature (user/token id); only
            the hash gate needs them.
    """

    step: int = 0
    token_ids: Tensor | None = None


@dataclass(frozen=True)
class Routing:
    """A gate's decision for one batch.

    Attributes:
        weights: ``(B, n)`` combine weights on the simplex; 0 = not dispatched.
        aux_losses: named scalar regularisers already multiplied by their weight;
            the trainer adds their sum to the task loss.
        gate_macs: multiply-accumulates the gate itself spent per sample.
        dropped: ``(B, n)`` bool, the (row, expert) assignments a capacity limit dropped
            (their weights are already 0 in ``weights``); None when no limit applied.
    """

    weights: Tensor
    aux_losses: Mapping[str, Tensor] = field(default_factory=dict)
    gate_macs: float = 0.0
    dropped: Tensor | None = None

    @property
    def mask(self) -> Tensor:
        """``(B, n)`` bool: which experts run for which row.

        ``!= 0`` rather than ``> 0`` so a NaN weight dispatches (and propagates NaN to the
        output) instead of silently dropping the row."""
        return self.weights != 0

    @property
    def indices(self) -> Tensor:
        """``(B, k_max)`` int64 selected experts per row, by decreasing weight.

        ``k_max`` is the largest number of dispatched experts in the batch; rows with
        fewer selections are padded with ``-1``.
        """
        k_max = int(self.mask.sum(dim=1).max().item()) if self.weights.numel() else 0
        if k_max == 0:
            return torch.empty(self.weights.shape[0], 0, dtype=torch.long, device=self.weights.device)
        vals, idx = self.weights.topk(k_max, dim=1)
        return torch.where(vals > 0, idx, torch.full_like(idx, -1))

    def aux_loss(self) -> Tensor:
        """Sum of the auxiliary losses (a 0-dim tensor, 0 when there are none)."""
        if not self.aux_losses:
            return self.weights.new_zeros(())
        return torch.stack([v.reshape(()) for v in self.aux_losses.values()]).sum()

    @property
    def load(self) -> Tensor:
        """``(n,)`` share of the rows dispatched to each expert (after any capacity drop)."""
        return self.mask.float().mean(dim=0)

    @property
    def dropped_fraction(self) -> float:
        """Share of the gate's (row, expert) assignments that a capacity limit dropped."""
        if self.dropped is None:
            return 0.0
        dropped = int(self.dropped.sum().item())
        return dropped / max(dropped + int(self.mask.sum().item()), 1)

    @property
    def rows_dropped_fraction(self) -> float:
        """Share of rows (tokens) that lost every assignment to the capacity limit (they get
        no expert output: in a residual block they pass through unchanged)."""
        if self.dropped is None:
            return 0.0
        lost = self.dropped.any(dim=1) & ~self.mask.any(dim=1)
        return float(lost.float().mean().item())

    def stats(self) -> dict[str, float]:
        """Sparsity statistics of this batch (floats, for logging)."""
        w = self.weights.detach()
        return {
            "active_experts": float(self.mask.sum(dim=1).float().mean().item()),
            "weight_sparsity": float((w < SPARSITY_EPS).float().mean().item()),
            "dropped_fraction": self.dropped_fraction,
            "max_load": float(self.load.max().item()) if w.numel() else 0.0,
        }


class Gate(nn.Module, ABC):
    """A router from features to a :class:`Routing`. ``forward`` must be pure."""

    n_experts: int

    @abstractmethod
    def forward(self, x: Tensor, ctx: RouteContext) -> Routing:  # pragma: no cover - contract
        """Route ``x`` of shape ``(B, d)``."""

    @abstractmethod
    def macs_per_sample(self) -> float:  # pragma: no cover - contract
        """Analytic matmul MACs of one routing call per sample, in the current mode."""


GateFactory = Callable[..., Gate]


@dataclass(frozen=True)
class _Entry:
    config_type: type
    gate_type: type


GATES: Registry[_Entry] = Registry("gate")


def register_gate(name: str, config_type: type) -> Callable[[type], type]:
    """Class decorator registering ``gate_type`` under ``name`` with its config type (the
    config is registered in the torch-free :mod:`~gatesearch.models.gates.registry` too)."""

    def deco(gate_type: type) -> type:
        if name in GATES:
            raise ValueError(f"gate {name!r} is already registered by {GATES[name].gate_type.__name__}")
        register_gate_config(name, config_type)
        GATES.register(name, _Entry(config_type=config_type, gate_type=gate_type))
        return gate_type

    return deco


def unregister_gate(name: str) -> None:
    """Remove gate ``name`` (and its config) from the registries."""
    GATES.unregister(name)
    unregister_gate_config(name)


_builtins_loaded = False


def _load_builtins() -> None:
    """Import every gate module of this package (found by
    :func:`~gatesearch.models.gates.registry.scan_gate_modules`) once."""
    global _builtins_loaded
    if not _builtins_loaded:
        import_builtin(builtin_gate_modules().gates)
        _builtins_loaded = True


def gate_names() -> list[str]:
    """Registered gate names, sorted."""
    _load_builtins()
    return sorted(GATES)


def build_gate(config, *, d_in: int, n_experts: int, num_ids: int | None = None) -> Gate:
    """Instantiate the gate registered for ``config``'s type."""
    _load_builtins()
    for name, entry in GATES.items():
        if type(config) is entry.config_type:
            return entry.gate_type(config, d_in=d_in, n_experts=n_experts, num_ids=num_ids)
    raise TypeError(f"no gate registered for config type {type(config).__name__}; known: {gate_names()}")
