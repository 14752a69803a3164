"""The dts gate's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gatesearch.models.gates.registry import register_gate_config
from gatesearch.models.knobs import knob

DECAYS = ("exp", "linear")


@dataclass(frozen=True)
class DTSGateConfig:
    """DTS-gate settings.

    Attributes:
        tau_max, tau_min: temperature at step 0 and its floor (2.0 / 0.1; the released code's
            1.0 / 0.5 never reach sparse routing without its switch, see the module doc).
        decay: ``exp`` or ``linear`` schedule from tau_max to tau_min.
        decay_steps: D, the step at which tau reaches tau_min.
        threshold: an expert is active when its Gumbel-softmax weight exceeds this (1e-3).
        switch_step: from this step on, training routes top-1; -1 = from the first update
            (released meaning); None = never.
        use_gumbel_gates: combine with ĝ (True) or with softmax(h) (False).
        balance_weight: weight of the balance loss (0 disables it).
        released_eval: evaluation as released (see :mod:`~gatesearch.models.gates.dts`); off: a
            deterministic top-1 on softmax(W_g x) with weight 1 and no capacity limit.
    """

    tau_max: float = knob(2.0, "dts: Gumbel-softmax temperature at the start of the DTS phase", low=1e-3, high=100.0)
    tau_min: float = knob(0.1, "dts: temperature floor", low=1e-3, high=100.0)
    decay: str = knob("exp", "dts: temperature schedule", flat="tau_decay", choices=DECAYS)
    decay_steps: int = knob(1000, "dts: epochs, counted from the start of the DTS phase (for EvoMoE: from the spawn), "
                            "for tau to reach tau_min (D)", flat="tau_decay_epochs", unit="epochs", flat_default=4.0,
                            low=1e-3, high=1e4)
    threshold: float = knob(1e-3, "dts: an expert is active above this Gumbel-softmax weight", flat="dts_threshold",
                            low=0.0, high=0.5)
    switch_step: int | None = knob(None, "dts: fraction of the DTS phase (for EvoMoE: counted from the spawn) after "
                                   "which training routes top-1; 0 = from the first update (the released code's "
                                   "switch=-1), 1 = never", kind="float", flat="switch_fraction", unit="fraction",
                                   flat_default=0.8, low=0.0, high=1.0)
    use_gumbel_gates: bool = knob(True, "dts: combine with the Gumbel-softmax weights (else softmax)")
    balance_weight: float = knob(1e-2, "dts: balance-loss weight", low=0.0, high=100.0)
    released_eval: bool = knob(False, "dts: evaluate as the released code (top1gate.py): combine with the top "
                               "probability instead of 1, Gumbel noise at the current temperature when "
                               "use_gumbel_gates, expert capacity ceil(0.25 x tokens)", flat="dts_released_eval")

    flat_le: ClassVar[tuple[tuple[str, str], ...]] = (("tau_min", "tau_max"),)

    def __post_init__(self) -> None:
        if not 0 < self.tau_min <= self.tau_max:
            raise ValueError(f"dts: need 0 < tau_min <= tau_max, got {self.tau_min}, {self.tau_max}")
        if self.decay not in DECAYS:
            raise ValueError(f"dts: decay must be one of {DECAYS}, got {self.decay!r}")
        if self.decay_steps < 1:
            raise ValueError(f"dts: decay_steps must be >= 1, got {self.decay_steps}")
        if not 0 <= self.threshold < 1:
            raise ValueError(f"dts: threshold must be in [0, 1), got {self.threshold}")
        if (self.switch_step is not None and self.switch_step < -1) or self.balance_weight < 0:
            raise ValueError("dts: switch_step must be None or >= -1, and balance_weight >= 0")

    def experts_per_row(self, n_experts: int) -> int:
        """1: evaluation routes top-1 on ``W_g x`` (training starts dense and decays towards top-1,
        see :mod:`~gatesearch.models.gates.dts`)."""
        return 1


register_gate_config("dts", DTSGateConfig)
