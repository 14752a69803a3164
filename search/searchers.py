"""The searcher registry: every searcher a space file may name, in one place.

Settings validation, the CLI's help and the Tuner all read :data:`SEARCHERS`. A searcher is a
:class:`SearcherSpec` with a factory for an ask/tell *core* over a :class:`~gatesearch.spaces.Space`:
``ask(key) -> config | None`` and ``tell(key, result | None)``. Optuna-backed searchers also
expose their sampler, which the Tuner hands to Ray Tune's multi-objective ``OptunaSearch``;
``nevergrad`` is our own multi-objective Tune searcher over its core. Optuna and Nevergrad are
imported only when a searcher is built (validating a space file does not pay for them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence


@dataclass(frozen=True)
class SearcherSpec:
    """One registered searcher.

    Attributes:
        name: what ``search: {searcher: ...}`` says.
        doc: one line for the CLI help and the README.
        sampler: ``(seed, num_samples) -> optuna sampler`` for Optuna-backed searchers, else None.
    """

    name: str
    doc: str
    sampler: Callable[[int, int], Any] | None = None

    def core(self, space, metrics: Sequence[str], modes: Sequence[str], *, seed: int, budget: int,
             num_workers: int = 1, nevergrad_optimizer: str = "NGOpt"):
        """An ask/tell core proposing configurations of ``space`` (seeded)."""
        if self.sampler is None:
            from gatesearch.search.nevergrad_mo import NevergradMO

            return NevergradMO(space, metrics, modes, optimizer=nevergrad_optimizer, budget=budget,
                               num_workers=num_workers, seed=seed)
        return OptunaCore(space, metrics, modes, self.sampler(seed, budget), budget=budget)


class OptunaCore:
    """Ask/tell over an Optuna study with define-by-run suggestions of a space (the same
    suggestion path as the Tuner's ``OptunaSearch``)."""

    def __init__(self, space, metrics: Sequence[str], modes: Sequence[str], sampler, *, budget: int):
        import optuna

        self.space, self.metrics, self.budget = space, list(metrics), budget
        self.study = optuna.create_study(directions=["maximize" if m == "max" else "minimize" for m in modes],
                                         sampler=sampler)
        self.pending: dict[str, Any] = {}
        self.asked = 0

    def ask(self, key: str) -> dict[str, Any] | None:
        from gatesearch.spaces import suggest

        if self.asked >= self.budget:
            return None
        trial = self.study.ask()
        self.asked += 1
        self.pending[key] = trial
        fixed = suggest(trial, self.space)  # returns the fixed values; Optuna records the suggested ones
        values = {**trial.params, **fixed}
        return {n: values[n] for n in self.space.params if n in values}

    def tell(self, key: str, result: Mapping[str, Any] | None) -> bool:
        import optuna

        trial = self.pending.pop(key, None)
        if trial is None:
            return False
        values = [result.get(m) for m in self.metrics] if result else None
        if values is None or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return False
        self.study.tell(trial, [float(v) for v in values])
        return True


def _startup(num_samples: int) -> int:
    return max(2, min(10, num_samples // 3))


def _tpe(seed: int, num_samples: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=_startup(num_samples))


def _nsga2(seed: int, num_samples: int):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, num_samples // 3)))


def _random(seed: int, num_samples: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _gp(seed: int, num_samples: int):
    import optuna

    # conditional parameters fall back to independent sampling (expected: no warning per trial)
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=_startup(num_samples), warn_independent_sampling=False)


SEARCHERS: dict[str, SearcherSpec] = {}


def register_searcher(spec: SearcherSpec) -> SearcherSpec:
    """Add ``spec`` under its name; a duplicate name is an error."""
    if spec.name in SEARCHERS:
        raise ValueError(f"searcher {spec.name!r} is already registered")
    SEARCHERS[spec.name] = spec
    return spec


register_searcher(SearcherSpec("tpe", "Optuna TPE, multi-objective (the default)", _tpe))
register_searcher(SearcherSpec("nsga2", "Optuna NSGA-II (population: a third of the budget, 4 to 50)", _nsga2))
register_searcher(SearcherSpec("random", "uniform random sampling (Optuna RandomSampler)", _random))
register_searcher(SearcherSpec("gp", "Optuna GP sampler (Gaussian-process BO, multi-objective)", _gp))
register_searcher(SearcherSpec("nevergrad", "our multi-objective Nevergrad searcher (nevergrad_optimizer)"))


def make_sampler(name: str, *, seed: int, num_samples: int):
    """The seeded Optuna sampler of searcher ``name``."""
    spec = SEARCHERS.get(name)
    if spec is None or spec.sampler is None:
        raise ValueError(f"searcher: {name!r} is not an Optuna sampler; Optuna searchers: "
                         f"{[n for n, s in SEARCHERS.items() if s.sampler is not None]}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return spec.sampler(seed, num_samples)
