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
        requires, extra: modules an optional searcher needs, and the ``pip install
            'gatesearch[<extra>]'`` extra that brings them (checked by the settings).
    """

    name: str
    doc: str
    sampler: Callable[[int, int], Any] | None = None
    requires: tuple[str, ...] = ()  # modules of an optional extra
    extra: str = ""  # the extra that installs them

    def missing(self) -> list[str]:
        """The required modules that are not installed (found without importing them)."""
        import importlib.util
        import sys

        # (an imported module may have no __spec__, e.g. optuna_integration: find_spec then raises)
        return [m for m in self.requires if m not in sys.modules and importlib.util.find_spec(m) is None]

    def core(self, space, metrics: Sequence[str], modes: Sequence[str], *, seed: int, budget: int,
             num_workers: int = 1, nevergrad_optimizer: str = "NGOpt", capped: bool = True):
        """An ask/tell core proposing configurations of ``space`` (seeded); ``capped``: see
        :class:`~gatesearch.search.nevergrad_mo.NevergradMO`."""
        if self.sampler is None:
            from gatesearch.search.nevergrad_mo import NevergradMO

            return NevergradMO(space, metrics, modes, optimizer=nevergrad_optimizer, budget=budget,
                               num_workers=num_workers, seed=seed, capped=capped)
        return OptunaCore(space, metrics, modes, self.sampler(seed, budget), budget=budget, capped=capped)


class OptunaCore:
    """Ask/tell over an Optuna study with define-by-run suggestions of a space (the same
    suggestion path as the Tuner's ``OptunaSearch``)."""

    def __init__(self, space, metrics: Sequence[str], modes: Sequence[str], sampler, *, budget: int,
                 capped: bool = True):
        import optuna

        self.space, self.metrics, self.budget, self.capped = space, list(metrics), budget, capped
        self.study = optuna.create_study(directions=["maximize" if m == "max" else "minimize" for m in modes],
                                         sampler=sampler)
        self.pending: dict[str, Any] = {}
        self.asked = 0

    def ask(self, key: str) -> dict[str, Any] | None:
        from gatesearch.spaces import suggest

        if self.capped and self.asked >= self.budget:
            return None
        trial = self.study.ask()
        self.asked += 1
        self.pending[key] = trial
        fixed = suggest(trial, self.space)  # returns the fixed values; Optuna records the suggested ones
        values = {**trial.params, **fixed}
        return {n: values[n] for n in self.space.params if n in values}

    def tell(self, key: str, result: Mapping[str, Any] | None, *, stopped: bool = False) -> bool:
        """Tell ``key``'s final result. ``None`` with ``stopped``: stopped early by the scheduler
        (PRUNED, as Ray's ``OptunaSearch`` records it, see ``tuner.FullFidelityOnly``); ``None``
        or a non-finite value otherwise: FAIL. Returns whether a result was told."""
        import optuna

        trial = self.pending.pop(key, None)
        if trial is None:
            return False
        if result is None and stopped:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
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

    # constant_liar: trials still running count as bad results, so parallel workers do not all
    # sample the same promising region (no effect when one trial runs at a time)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=_startup(num_samples), constant_liar=True)


def nsga2_population(num_samples: int) -> int:
    """NSGA-II's population for a budget: a fifth of it, 4 to 20, so that a 50-trial search
    runs several generations (a third of the budget, up to 50, left one random generation at
    trial 50: below random search in ``bench/searchers.py``)."""
    return max(4, min(20, num_samples // 5))


def _nsga2(seed: int, num_samples: int):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(num_samples))


def _random(seed: int, num_samples: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _gp(seed: int, num_samples: int):
    import optuna

    # conditional parameters fall back to independent sampling (expected: no warning per trial)
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=_startup(num_samples), warn_independent_sampling=False)


def _botorch(seed: int, num_samples: int):
    import warnings

    import optuna
    from optuna_integration import BoTorchSampler
    from optuna_integration.botorch import qnehvi_candidates_func

    # optuna-integration marks the sampler and its candidate functions experimental (a warning per suggestion)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning,
                            message=r".*(BoTorchSampler|optuna_integration\.botorch).*")

    # qLogNEHVI (noisy expected hypervolume improvement, log form, Ament et al. 2023) over a GP
    # per objective; running trials enter as pending points, so parallel trials differ
    return BoTorchSampler(candidates_func=qnehvi_candidates_func, n_startup_trials=_startup(num_samples),
                          consider_running_trials=True, seed=seed)


SEARCHERS: dict[str, SearcherSpec] = {}


def register_searcher(spec: SearcherSpec) -> SearcherSpec:
    """Add ``spec`` under its name; a duplicate name is an error."""
    if spec.name in SEARCHERS:
        raise ValueError(f"searcher {spec.name!r} is already registered")
    SEARCHERS[spec.name] = spec
    return spec


register_searcher(SearcherSpec("tpe", "Optuna TPE, multi-objective, constant liar for parallel trials (the default)",
                               _tpe))
register_searcher(SearcherSpec("nsga2", "Optuna NSGA-II (population: a fifth of the budget, 4 to 20)", _nsga2))
register_searcher(SearcherSpec("random", "uniform random sampling (Optuna RandomSampler)", _random))
register_searcher(SearcherSpec("gp", "Optuna GP sampler (Gaussian-process BO, multi-objective)", _gp))
register_searcher(SearcherSpec("nevergrad", "our multi-objective Nevergrad searcher (nevergrad_optimizer)"))
register_searcher(SearcherSpec("botorch", "BoTorch qLogNEHVI Bayesian optimisation via optuna-integration "
                               "(optional extra: pip install 'gatesearch[botorch]')", _botorch,
                               requires=("botorch", "optuna_integration"), extra="botorch"))


def make_sampler(name: str, *, seed: int, num_samples: int):
    """The seeded Optuna sampler of searcher ``name``."""
    spec = SEARCHERS.get(name)
    if spec is None or spec.sampler is None:
        raise ValueError(f"searcher: {name!r} is not an Optuna sampler; Optuna searchers: "
                         f"{[n for n, s in SEARCHERS.items() if s.sampler is not None]}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return spec.sampler(seed, num_samples)
