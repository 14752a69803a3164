"""The EvoMoEConfig's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass

from gatesearch.models.knobs import knob

DIVERSIFY = ("copy", "noise", "mask")


@dataclass(frozen=True)
class EvoMoEConfig:
    """Attributes:
        share_steps: length of phase 1 (one shared expert), in optimisation steps.
        diversify: ``copy``, ``noise`` or ``mask``.
        mask_ratio: fraction of weights zeroed per spawned expert (``mask``).
        noise_std: relative noise scale (``noise``).
        seed: seeds the spawning masks/noise.
    """

    share_steps: int = knob(100, "EvoMoE: epochs of phase 1 (one shared expert, dense)", flat="share_epochs",
                            unit="epochs", flat_default=1.0, low=0.0, high=1e4)
    diversify: str = knob("mask", "EvoMoE: how experts are spawned from the shared one", choices=DIVERSIFY)
    mask_ratio: float = knob(0.3, "EvoMoE: fraction of weights zeroed per spawned expert", low=0.0, high=0.95,
                             when={"diversify": ("mask",)})
    noise_std: float = knob(0.1, "EvoMoE: relative spawn noise", low=0.0, high=10.0, when={"diversify": ("noise",)})
    seed: int = 0

    def __post_init__(self) -> None:
        if self.share_steps < 0:
            raise ValueError(f"evomoe: share_steps must be >= 0, got {self.share_steps}")
        if self.diversify not in DIVERSIFY:
            raise ValueError(f"evomoe: diversify must be one of {DIVERSIFY}, got {self.diversify!r}")
        if not 0 <= self.mask_ratio < 1 or self.noise_std < 0:
            raise ValueError("evomoe: mask_ratio must be in [0, 1) and noise_std >= 0")
