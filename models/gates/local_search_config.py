"""The LocalSearchConfig's settings: a frozen dataclass whose searchable fields are knobs
(torch-free, so a search space can be checked without importing PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from gatesearch.models.knobs import knob


@dataclass(frozen=True)
class LocalSearchConfig:
    """Permutation local search settings.

    Attributes:
        budget_steps: T, steps during which P is learned (then hardened and frozen).
        tau_start, tau_end: Sinkhorn temperature, log-linear from start to end.
        iters_start, iters_end: Sinkhorn iterations, linear from start to end.
        zeta: weight of the permutation entropy term.
    """

    budget_steps: int = knob(1, "local search: epochs before the permutation is hardened (its budget)",
                             flat="ls_budget_epochs", unit="epochs", flat_default=1.0, low=1e-3, high=1e4)
    tau_start: float = knob(1e-3, "local search: initial Sinkhorn temperature", flat="ls_tau_start",
                            low=1e-12, high=1e3)
    tau_end: float = knob(1e-7, "local search: final Sinkhorn temperature", flat="ls_tau_end", low=1e-12, high=1e3)
    iters_start: int = knob(20, "local search: Sinkhorn iterations at the start (paper: 20)",
                            flat="ls_sinkhorn_iters_start", low=1, high=10000)
    iters_end: int = knob(150, "local search: Sinkhorn iterations at the end of the budget (paper: 150)",
                          flat="ls_sinkhorn_iters_end", low=1, high=10000)
    zeta: float = knob(1e-4, "local search: permutation entropy weight", flat="ls_zeta", low=0.0, high=1e3)

    flat_le: ClassVar[tuple[tuple[str, str], ...]] = (("ls_tau_end", "ls_tau_start"),
                                                      ("ls_sinkhorn_iters_start", "ls_sinkhorn_iters_end"))

    def __post_init__(self) -> None:
        if self.budget_steps < 1:
            raise ValueError(f"local_search: budget_steps must be >= 1, got {self.budget_steps}")
        if not (0 < self.tau_end <= self.tau_start):
            raise ValueError("local_search: need 0 < tau_end <= tau_start")
        if not (1 <= self.iters_start <= self.iters_end):
            raise ValueError("local_search: need 1 <= iters_start <= iters_end")
