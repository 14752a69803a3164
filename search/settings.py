"""Search settings: the ``search:`` section of a space file, overridable from the CLI."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from gatesearch._hints import did_you_mean

SEARCHERS = ("tpe", "nsga2", "random", "gp", "nevergrad")
SCHEDULERS = ("fifo", "moasha")


@dataclass(frozen=True)
class SearchSettings:
    """How to run a search.

    Attributes:
        searcher: ``tpe``, ``nsga2``, ``random``, ``gp`` (Optuna samplers behind Ray Tune's
            multi-objective OptunaSearch) or ``nevergrad`` (our multi-objective Nevergrad searcher).
        nevergrad_optimizer: Nevergrad registry name used when searcher is ``nevergrad``.
        front_every: re-log the Pareto front and hypervolume every this many finished trials.
        scheduler: ``fifo`` (run every trial to the end) or ``moasha`` (multi-objective early stopping).
        moasha_grace, moasha_eta: first rung (epochs) and reduction factor of MO-ASHA.
        num_samples: number of trials.
        max_concurrent: trials running at once.
        seed: seeds the sampler (proposals are reproducible for a given seed).
        cpus_per_trial: Ray CPUs (and torch threads) per trial.
        gpus_per_trial: Ray GPUs per trial (fractions allowed); models use CUDA when > 0.
        max_failures: how many times Ray retries a failed trial (node death, actor crash, or an
            exception in the trial) before marking it FAILED; 0 = never retry.
        tracking_timeout_s: how long MLflow may be unreachable before the search stops with an
            error; while it is down, everything to be logged is buffered in order.
    """

    searcher: str = "tpe"
    num_samples: int = 12
    max_concurrent: int = 2
    seed: int = 0
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    nevergrad_optimizer: str = "NGOpt"
    front_every: int = 4
    scheduler: str = "fifo"
    moasha_grace: int = 1
    moasha_eta: float = 3.0
    max_failures: int = 0
    tracking_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.searcher not in SEARCHERS:
            raise ValueError(f"searcher: unknown {self.searcher!r}{did_you_mean(self.searcher, SEARCHERS)}; choose one of {list(SEARCHERS)}")
        if self.num_samples < 1:
            raise ValueError(f"num_samples: must be >= 1, got {self.num_samples}")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent: must be >= 1, got {self.max_concurrent}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler: unknown {self.scheduler!r}; choose one of {list(SCHEDULERS)}")
        if self.moasha_grace < 1 or self.moasha_eta <= 1:
            raise ValueError("moasha_grace must be >= 1 and moasha_eta > 1")
        if self.front_every < 1:
            raise ValueError(f"front_every: must be >= 1, got {self.front_every}")
        if self.max_failures < 0:
            raise ValueError(f"max_failures: must be >= 0, got {self.max_failures}")
        if self.tracking_timeout_s <= 0:
            raise ValueError(f"tracking_timeout_s: must be > 0, got {self.tracking_timeout_s}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise ValueError("cpus_per_trial must be > 0 and gpus_per_trial >= 0")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "SearchSettings":
        """Build from a ``search:`` section; unknown keys and wrong types raise ``ValueError`` naming the key."""
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in raw.items():
            if key not in known:
                raise ValueError(f"{key}: unknown search setting{did_you_mean(key, known)}; known: {list(known)}")
            want = type(getattr(cls(), key))
            ok = isinstance(value, want) or (want is float and isinstance(value, int))
            if isinstance(value, bool) or not ok:
                raise ValueError(f"{key}: expected {want.__name__}, got {type(value).__name__} {value!r}")
            kwargs[key] = want(value)
        return cls(**kwargs)

    def override(self, **changes: Any) -> "SearchSettings":
        """A copy with the non-None ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})
