"""The searcher registry: every searcher a space file may name, in one place.

Settings validation, the CLI's help, the Tuner and the benchmarks all read :data:`SEARCHERS`. A
searcher is a :class:`SearcherSpec` whose ``build`` makes an ask/tell *core*
(:class:`SearchCore`) over a :class:`~gatesearch.spaces.Space`; one Ray Tune adapter
(:class:`gatesearch.search.ray.searcher.CoreSearcher`) runs every core, and the simulated backend
(:mod:`gatesearch.search.loop.simulated`) drives the same cores, so the benchmarked path is the shipped one. A new searcher is one
:func:`register_searcher` call (an Optuna sampler: :func:`optuna_searcher`). Optuna and Nevergrad are
imported only when a searcher is built (validating a space file does not pay for them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

from gatesearch._registry import Registry
from gatesearch.search.searchers.botorch_qnehvi import qlognehvi_candidates
from gatesearch.search.searchers.optuna_core import (  # noqa: F401 - re-exported
    MAX_INFEASIBLE,
    UNSTICK_AFTER,
    OptunaCore,
    ask_feasible,
)


class SearchCore(Protocol):
    """An ask/tell searcher over a space, multi-objective. Picklable: it is saved with the
    experiment and ``gatesearch resume`` continues from the saved copy."""

    def ask(self, key: str) -> dict[str, Any] | None:
        """A configuration (the space's parameter names -> values) for proposal ``key``, or None
        when the searcher has nothing more to propose."""

    def tell(self, key: str, result: Mapping[str, Any] | None, *, stopped: bool = False) -> bool:
        """``key``'s final result (metric name -> value). ``None``: failed, or with ``stopped``
        stopped early by the scheduler (a lower-fidelity result is never told as final). Returns
        whether a result was told.

        A core may also define ``observe(key, result)``: it is then given every intermediate
        result of a running proposal (e.g. to know a stopped trial's constraint violations);
        and ``tell_known(config, result) -> bool``: an earlier search's result, told before the
        first ask (``gatesearch run --warm-start``; a core without it is warm-started through
        deduplication only)."""


@dataclass(frozen=True)
class CoreRequest:
    """What a searcher is built for: the space, the objectives (``modes``: ``"max"``/``"min"``), the
    seed, the planned number of trials, how many run at once, whether :meth:`SearchCore.ask` stops
    after ``budget`` asks (``capped``: not behind deduplication, where answered repeats are asks that
    are not trials), the outcome constraints (a :class:`~gatesearch.search.config.constraints.Constraints`,
    None or empty for none; a searcher that supports them models them) and the searcher's own
    settings (``nevergrad_optimizer``). ``fidelities``: the scheduler's rung epochs when the searcher
    should also learn from rung results (:mod:`gatesearch.search.searchers.rung_model`; Optuna samplers),
    empty to learn from final results only."""

    space: Any
    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    seed: int
    budget: int
    num_workers: int = 1
    capped: bool = True
    nevergrad_optimizer: str = "NGOpt"
    constraints: Any = None
    fidelities: tuple[int, ...] = ()


@dataclass(frozen=True)
class SearcherSpec:
    """One registered searcher.

    Attributes:
        name: what ``search: {searcher: ...}`` says.
        doc: one line for the CLI help and the README.
        build: ``CoreRequest -> SearchCore``.
        requires, extra: modules an optional searcher needs, and the ``pip install
            'gatesearch[<extra>]'`` extra that brings them (checked by the settings).
        constrained: whether the searcher models outcome constraints (``CoreRequest.constraints``);
            one that does not is told results as they are (:mod:`gatesearch.search.config.constraints`).
        rung_model: whether ``build`` honours ``CoreRequest.fidelities`` (``moasha_rung_model``).
    """

    name: str
    doc: str
    build: Callable[[CoreRequest], SearchCore] | None = None
    requires: tuple[str, ...] = ()  # modules of an optional extra
    extra: str = ""  # the extra that installs them
    constrained: bool = False
    rung_model: bool = False

    def missing(self) -> list[str]:
        """The required modules that are not installed (found without importing them)."""
        import importlib.util
        import sys

        # (an imported module may have no __spec__, e.g. optuna_integration: find_spec then raises)
        return [m for m in self.requires if m not in sys.modules and importlib.util.find_spec(m) is None]

    def core(self, space, metrics: Sequence[str], modes: Sequence[str], *, seed: int, budget: int,
             num_workers: int = 1, nevergrad_optimizer: str = "NGOpt", capped: bool = True,
             constraints: Any = None, fidelities: Sequence[int] = ()) -> SearchCore:
        """An ask/tell core proposing configurations of ``space`` (seeded), wrapped in a
        :class:`~gatesearch.search.searchers.recorded.RecordedCore`: it pickles as this searcher's name, the
        request and the calls it was given, never as live library objects."""
        from gatesearch.search.searchers.recorded import RecordedCore

        if self.build is None:
            raise ValueError(f"searcher {self.name!r} has no build function")
        request = CoreRequest(space, tuple(metrics), tuple(modes), seed=seed, budget=budget,
                              num_workers=num_workers, capped=capped, nevergrad_optimizer=nevergrad_optimizer,
                              constraints=constraints or None, fidelities=tuple(int(f) for f in fidelities))
        return RecordedCore(self.name, request, self.build(request))



def _startup(num_samples: int) -> int:
    return max(2, min(10, num_samples // 3))


def rung_model_points(space, num_samples: int) -> int:
    """Completed observations a fidelity's study needs before it proposes (BOHB: dimensions + 1,
    at least the sampler's random start-up)."""
    return max(_startup(num_samples), len(space.params) + 1)


def _tpe(seed: int, num_samples: int):
    import optuna

    # constant_liar: trials still running count as bad results, so parallel workers do not all
    # sample the same promising region (no effect when one trial runs at a time)
    # constraints (c-TPE): infeasible trials go to the "bad" group, ordered by total violation
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=_startup(num_samples), constant_liar=True)


def nsga2_population(num_samples: int) -> int:
    """NSGA-II's population for a budget: a fifth of it, 4 to 20, so that a 50-trial search
    runs several generations (a third of the budget, up to 50, left one random generation at
    trial 50: below random search in ``bench/searchers.py``)."""
    return max(4, min(20, num_samples // 5))


def _nsga2(seed: int, num_samples: int):
    import optuna

    # constraints: Deb's constrained domination (feasible first, then the smaller total violation)
    return optuna.samplers.NSGAIISampler(seed=seed, population_size=nsga2_population(num_samples))


def _random(seed: int, num_samples: int):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _gp(seed: int, num_samples: int):
    import optuna

    # conditional parameters fall back to independent sampling (expected: no warning per trial);
    # constraints: a GP per constraint, the acquisition weighted by the probability of feasibility
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=_startup(num_samples), warn_independent_sampling=False)


def _botorch(seed: int, num_samples: int):
    import warnings

    import optuna

    from gatesearch.search.searchers.botorch_sampler import NonRepeatBoTorchSampler

    # optuna-integration marks the sampler and its candidate functions experimental (a warning per suggestion)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning,
                            message=r".*(BoTorchSampler|optuna_integration\.botorch).*")

    # qLogNEHVI (noisy expected hypervolume improvement, log form, Ament et al. 2023) over a GP
    # per objective; running trials enter as pending points, so parallel trials differ; the
    # candidate is the best restart that is not a repeat (botorch_qnehvi.py)
    return NonRepeatBoTorchSampler(candidates_func=qlognehvi_candidates, n_startup_trials=_startup(num_samples),
                          consider_running_trials=True, seed=seed)


#: what searchers pickled before the candidates moved to botorch_qnehvi.py name (a resumed search)
_qnehvi = qlognehvi_candidates


def optuna_searcher(name: str, doc: str, sampler: Callable[..., Any], *, unstick_after: int | None = None,
                    **spec) -> SearcherSpec:
    """A searcher over an Optuna sampler: ``sampler(seed, num_samples)`` -> a seeded sampler. With
    outcome constraints, every trial is told its violations (``Trial.set_constraint``, one per
    bound): Optuna 5's TPE, NSGA-II, GP and BoTorch samplers model them (``constrained=True``
    says so in the registry). ``unstick_after``: see :class:`OptunaCore` (the samplers that
    propose a repeat again when told its known result)."""

    def build(r: CoreRequest) -> SearchCore:
        if r.fidelities:  # one study per fidelity, BOHB's rule (gatesearch.search.searchers.rung_model)
            from gatesearch.search.searchers.rung_model import RungModelCore

            samplers = [sampler(r.seed + i, r.budget) for i in range(len(r.fidelities) + 1)]
            return RungModelCore(r.space, r.metrics, r.modes, samplers, fidelities=r.fidelities,
                                 min_points=rung_model_points(r.space, r.budget), budget=r.budget,
                                 capped=r.capped, constraints=r.constraints, unstick_after=unstick_after,
                                 seed=r.seed)
        return OptunaCore(r.space, r.metrics, r.modes, sampler(r.seed, r.budget), budget=r.budget,
                          capped=r.capped, constraints=r.constraints, unstick_after=unstick_after, seed=r.seed)

    spec.setdefault("rung_model", True)
    return SearcherSpec(name, doc, build, **spec)


def _nevergrad(r: CoreRequest) -> SearchCore:
    from gatesearch.search.searchers.nevergrad_mo import NevergradMO

    return NevergradMO(r.space, r.metrics, r.modes, optimizer=r.nevergrad_optimizer, budget=r.budget,
                       num_workers=r.num_workers, seed=r.seed, capped=r.capped, constraints=r.constraints)


SEARCHERS: Registry[SearcherSpec] = Registry("searcher")


def register_searcher(spec: SearcherSpec) -> SearcherSpec:
    """Add ``spec`` under its name; another under a taken name is an error."""
    return SEARCHERS.register(spec.name, spec)


def flat(space) -> bool:
    """Whether every parameter of ``space`` is always present with a fixed range: no ``when:``
    condition and no relation (which narrows a range per configuration)."""
    return not space.relations and not any(p.when for p in space.params.values())


def auto_searcher(space) -> str:
    """The searcher ``auto`` (the default) runs on ``space``: ``gp`` on a flat space, ``tpe`` on
    one with conditions or relations.

    Measured (docs/benchmarks/public.md, docs/benchmarks/searchers.md, 20 paired seeds each): on
    the flat public tables (NAS-Bench-201, HPOLib) GP's hypervolume regret at 50 trials was 1.52-3.19x
    smaller than random's on all 7 tasks and smaller than TPE's on 6 of 7. On the conditional MoE
    surrogates TPE was the one clearly above random on both (GP was not on digits, where TPE led;
    GP led on Adult): Optuna's GP models only the parameters present in every trial and draws the
    conditional ones at random, and a relation's narrowed range does the same to a parameter."""
    return "gp" if flat(space) else "tpe"


def searcher_named(name: str, space) -> str:
    """``name`` as a person reads it: ``auto`` says what it runs on ``space`` and why."""
    if name != "auto":
        return name
    chosen = auto_searcher(space)
    return f"auto: {chosen} ({'a flat space' if chosen == 'gp' else 'a space with conditions or relations'})"


def _auto(r: CoreRequest) -> SearchCore:
    return SEARCHERS[auto_searcher(r.space)].build(r)


register_searcher(SearcherSpec("auto", "gp on a flat space (no when: and no relation), tpe otherwise (the default)",
                               _auto, constrained=True, rung_model=True))
register_searcher(optuna_searcher("tpe", "Optuna TPE, multi-objective, constant liar for parallel trials",
                                  _tpe, constrained=True))
register_searcher(optuna_searcher("nsga2", "Optuna NSGA-II (population: a fifth of the budget, 4 to 20)", _nsga2, constrained=True))
register_searcher(optuna_searcher("random", "uniform random sampling (Optuna RandomSampler)", _random,
                                  rung_model=False))  # it learns nothing, from rungs or otherwise
register_searcher(optuna_searcher("gp", "Optuna GP sampler (Gaussian-process BO, multi-objective)", _gp,
                                  constrained=True, unstick_after=UNSTICK_AFTER))
register_searcher(SearcherSpec("nevergrad", "our multi-objective Nevergrad searcher (nevergrad_optimizer)",
                               _nevergrad, constrained=True))
register_searcher(optuna_searcher("botorch", "BoTorch qLogNEHVI Bayesian optimisation via optuna-integration "
                                  "(optional extra: pip install 'gatesearch[botorch]')", _botorch,
                                  requires=("botorch", "optuna_integration"), extra="botorch", constrained=True,
                                  unstick_after=UNSTICK_AFTER))
