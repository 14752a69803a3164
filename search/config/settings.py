"""Search settings: the ``search:`` section of a space file, overridable from the CLI."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from gatesearch._hints import did_you_mean
from gatesearch.search.schedulers.registry import SCHEDULERS  # the registry (light: no numpy at import)
from gatesearch.search.searchers.registry import SEARCHERS  # the registry (light: no optuna at import)

#: inclusive bounds of every numeric setting, and why (checked before anything runs)
BOUNDS: dict[str, tuple[float, float, str]] = {
    "num_samples": (1, 10_000_000, "trials in the search"),
    "max_concurrent": (1, 100_000, "trials running at once"),
    "seed": (0, 2**32 - 1, "samplers take a 32-bit unsigned seed"),
    "cpus_per_trial": (0.001, 100_000, "Ray CPUs per trial; > 0"),
    "gpus_per_trial": (0, 1_000, "Ray GPUs per trial; fractions allowed"),
    "front_every": (1, 1_000_000_000, "finished trials between front logs"),
    "moasha_grace": (1, 1_000_000, "epochs of MO-ASHA's first rung"),
    "moasha_eta": (1.000001, 1_000, "MO-ASHA's reduction factor; > 1"),
    "moasha_brackets": (1, 100, "MO-ASHA's Hyperband brackets; 1 = plain ASHA"),
    "max_failures": (0, 1_000, "retries of a failed trial"),
    "fail_fast": (0, 1_000_000, "failed trials in a row that stop the search; 0 = never"),
    "tracking_timeout_s": (0.001, 10_000_000, "seconds the tracking store may be unreachable; > 0"),
}
MOASHA_MODES = ("stop", "promote")


@dataclass(frozen=True)
class SearchSettings:
    """How to run a search.

    Attributes:
        searcher: a name in :data:`gatesearch.search.searchers.registry.SEARCHERS` (``tpe``, ``nsga2``,
            ``random``, ``gp``, ``botorch``: Optuna samplers; ``nevergrad``: our multi-objective
            Nevergrad searcher; every one an ask/tell core behind one Ray Tune adapter). The
            default, ``auto``, runs ``gp`` on a flat space and ``tpe`` on one with conditions or
            relations (:func:`~gatesearch.search.searchers.registry.auto_searcher`).
        nevergrad_optimizer: Nevergrad registry name used when searcher is ``nevergrad``.
        front_every: re-log the Pareto front and hypervolume every this many finished trials.
        scheduler: a name in :data:`gatesearch.search.schedulers.registry.SCHEDULERS`: ``fifo`` (run
            every trial to the end) or ``moasha`` (multi-objective early stopping).
        moasha_grace: the first rung of MO-ASHA, in epochs.
        moasha_eta: MO-ASHA's reduction factor (the top 1/eta at a rung go on).
        moasha_mode: ``stop`` (a trial below the top 1/eta at a rung is stopped) or ``promote``
            (every trial pauses at a rung; the top 1/eta are resumed from their checkpoints).
        moasha_brackets: Hyperband brackets of MO-ASHA (bracket ``s`` starts at ``grace · eta^s``
            epochs; :mod:`gatesearch.search.schedulers.moasha`); 1 = plain ASHA.
        moasha_rung_model: the searcher also learns from the results trials report at MO-ASHA's
            rungs, BOHB's rule (:mod:`gatesearch.search.searchers.rung_model`; Optuna searchers only).
        num_samples: number of trials.
        max_concurrent: trials running at once.
        seed: seeds the sampler (proposals are reproducible for a given seed).
        cpus_per_trial: Ray CPUs (and torch threads) per trial.
        gpus_per_trial: Ray GPUs per trial (fractions allowed); models use CUDA when > 0.
        max_failures: how many times Ray retries a failed trial (node death, actor crash, or an
            exception in the trial) before marking it FAILED; 0 = never retry.
        fail_fast: stop the search (resumably) when this many trials in a row failed
            (:mod:`gatesearch.search.lifecycle.failures`): a bug in a training function costs a few trials,
            not the budget; 0 = never stop.
        tracking_timeout_s: how long MLflow may be unreachable before the search stops with an
            error; while it is down, everything to be logged is buffered in order.
        dedup: a configuration the search already evaluated (the same active parameters and
            seed) is answered from its result instead of trained again, and not charged against
            ``num_samples`` (:mod:`gatesearch.search.loop.dedup`); False runs every proposal.
        reference_point: the hypervolume reference point, objective name -> value (every
            objective; checked against the objective's metrics by ``search.validate``). It fixes
            the box of the progress display, the parent run's hypervolume history, the figures and
            MO-ASHA's tie-breaking (inside the box first). None: inferred from the first front
            (:func:`gatesearch.search.front.pareto.reference_point`).
    """

    searcher: str = "auto"
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
    moasha_mode: str = "stop"
    moasha_brackets: int = 1
    moasha_rung_model: bool = False
    max_failures: int = 0
    fail_fast: int = 3
    tracking_timeout_s: float = 300.0
    dedup: bool = True
    reference_point: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if self.reference_point is not None:
            if not isinstance(self.reference_point, Mapping) or not self.reference_point:
                raise ValueError(f"reference_point: expected a mapping objective -> value, e.g. "
                                 f"{{accuracy: 0.9, macs_per_sample: 30000}}, got {self.reference_point!r}")
            for name, value in self.reference_point.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise ValueError(f"reference_point: {name} must be a finite number, got {value!r}")
            object.__setattr__(self, "reference_point", {str(k): float(v) for k, v in self.reference_point.items()})
        for name, (low, high, why) in BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name}: must be a finite number, got {value}")
            if value < low or value > high:
                raise ValueError(f"{name}: must be >= {low:g} and <= {high:g} ({why}), got {value!r}")
        if self.searcher not in SEARCHERS:
            raise ValueError(f"searcher: unknown {self.searcher!r}{did_you_mean(self.searcher, SEARCHERS)}; "
                             f"choose one of {list(SEARCHERS)}")
        missing = SEARCHERS[self.searcher].missing()
        if missing:
            raise ValueError(f"searcher: {self.searcher!r} needs {', '.join(missing)}, which is not installed; "
                             f"install it with: pip install 'gatesearch[{SEARCHERS[self.searcher].extra}]'")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"scheduler: unknown {self.scheduler!r}{did_you_mean(self.scheduler, SCHEDULERS)}; "
                             f"choose one of {list(SCHEDULERS)}")
        if self.moasha_mode not in MOASHA_MODES:
            raise ValueError(f"moasha_mode: unknown {self.moasha_mode!r}{did_you_mean(self.moasha_mode, MOASHA_MODES)}; "
                             f"choose one of {list(MOASHA_MODES)}")
        for spec in SCHEDULERS.values():  # another scheduler's own settings, set away from their default
            for key in spec.settings if spec.name != self.scheduler else ():
                if getattr(self, key) != SearchSettings.__dataclass_fields__[key].default:
                    raise ValueError(f"{key}: a setting of {spec.title or spec.name}, but scheduler is "
                                     f"{self.scheduler!r}; set scheduler: {spec.name} (or remove {key})")
        if self.moasha_rung_model and not SEARCHERS[self.searcher].rung_model:
            able = [n for n, s in SEARCHERS.items() if s.rung_model]
            raise ValueError(f"moasha_rung_model: searcher {self.searcher!r} cannot model rung results; "
                             f"use one of {able} (or remove moasha_rung_model)")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> "SearchSettings":
        """Build from a ``search:`` section; unknown keys and wrong types raise ``ValueError`` naming the key."""
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in raw.items():
            if key in ("constraints", "resources", "plugins", "fixed", "params"):
                raise ValueError(f"{key}: a top-level key of the space file, not a search setting; move it out "
                                 f"of search: (to the same level as search:)")
            if key not in known:
                raise ValueError(f"{key}: unknown search setting{did_you_mean(key, known)}; known: {list(known)}")
            if key == "reference_point":  # a mapping, checked by the settings themselves
                kwargs[key] = value
                continue
            want = type(getattr(cls(), key))
            ok = isinstance(value, want) or (want is float and isinstance(value, int))
            if (isinstance(value, bool) and want is not bool) or not ok:
                raise ValueError(f"{key}: expected {want.__name__}, got {type(value).__name__} {value!r}")
            kwargs[key] = want(value)
        return cls(**kwargs)

    def override(self, **changes: Any) -> "SearchSettings":
        """A copy with the non-None ``changes`` applied; an unknown name is a ``ValueError`` with a
        did-you-mean (``run_search(sf, overrides={...})`` takes the same names as ``search:``)."""
        known = [f.name for f in fields(self)]
        for key in changes:
            if key not in known:
                raise ValueError(f"{key}: unknown search setting{did_you_mean(key, known)}; known: {known}")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def reference_for(self, names: tuple[str, ...] | list[str]) -> list[float] | None:
        """The user's reference point in the order of ``names`` (None when it is inferred)."""
        return None if self.reference_point is None else [self.reference_point[n] for n in names]
