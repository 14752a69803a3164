"""Optuna samplers behind Ray Tune's multi-objective ``OptunaSearch``."""

from __future__ import annotations

import optuna

from gatesearch.search.settings import SEARCHERS

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_sampler(name: str, *, seed: int, num_samples: int) -> optuna.samplers.BaseSampler:
    """The seeded Optuna sampler called ``name`` (one of :data:`SEARCHERS`)."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, num_samples // 3)))
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, num_samples // 3)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        # conditional parameters fall back to independent sampling (expected: no warning per trial)
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=max(2, min(10, num_samples // 3)),
                                         warn_independent_sampling=False)
    raise ValueError(f"searcher: unknown {name!r}; choose one of {list(SEARCHERS)}")
