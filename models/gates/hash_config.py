"""The hash gate's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass

from gatesearch.models.gates.registry import register_gate_config
from gatesearch.models.knobs import knob

HASH_KINDS = ("random", "balanced")


@dataclass(frozen=True)
class HashGateConfig:
    """Hash gate settings.

    Attributes:
        kind: ``random`` or ``balanced``.
        seed: seed of the table (the table is a deterministic function of it).
        id_counts: optional frequency of each id, for ``balanced``.
    """

    kind: str = knob("random", "hash: table kind (random, or balanced by id frequency)", flat="hash_kind",
                     choices=HASH_KINDS)
    seed: int = 0
    id_counts: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in HASH_KINDS:
            raise ValueError(f"hash: kind must be one of {HASH_KINDS}, got {self.kind!r}")

    def experts_per_row(self, n_experts: int) -> int:
        """1: the table sends each id to one expert."""
        return 1


register_gate_config("hash", HashGateConfig)
