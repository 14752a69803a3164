"""Ray Tune: the only module that imports ray.

Builds and runs the Tuner: multi-objective ``OptunaSearch`` (define-by-run over our
:class:`spaces.Space`), a function trainable that calls the objective and reports
every epoch, and a driver-side callback that forwards trial events to a sink (the
MLflow logger lives in :mod:`search.tracking`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import ray
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

import spaces
from objectives import get_objective
from search.nevergrad_mo import NevergradMO
from search.searchers import make_sampler
from search.settings import SearchSettings

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AIR_NEW_OUTPUT": "0", "TUNE_MAX_PENDING_TRIALS_PG": "2"}


def quiet_ray_env() -> None:
    """Ray settings for a quiet, loopback-only, local instance (set before ray.init)."""
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a private local instance (never an existing one by accident)."""
    if ray.is_initialized():
        return
    quiet_ray_env()
    if address:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


class TrialSink(Protocol):
    """Receives trial events on the driver."""

    def on_start(self, trial_id: str, config: Mapping[str, Any]) -> None: ...
    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None: ...
    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None: ...
    def on_error(self, trial_id: str, error: str) -> None: ...


class _SinkCallback(tune.Callback):
    def __init__(self, sink: TrialSink):
        self.sink = sink

    def on_trial_start(self, iteration, trials, trial, **info):
        self.sink.on_start(trial.trial_id, dict(trial.config))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.sink.on_result(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.sink.on_complete(trial.trial_id, dict(trial.last_result or {}))

    def on_trial_error(self, iteration, trials, trial, **info):
        err = ""
        if trial.error_file and os.path.exists(trial.error_file):
            with open(trial.error_file, encoding="utf-8", errors="replace") as f:
                err = f.read()
        self.sink.on_error(trial.trial_id, err or "trial failed (no error file)")


@dataclass(frozen=True)
class DefineByRun:
    """Picklable Optuna define-by-run function over a space (Ray checkpoints the searcher)."""

    space: spaces.Space

    def __call__(self, trial) -> dict[str, Any]:
        return spaces.suggest(trial, self.space)


class NevergradMOSearch(Searcher):
    """Ray Tune adapter over :class:`search.nevergrad_mo.NevergradMO` (multi-objective)."""

    def __init__(self, core: NevergradMO):
        super().__init__(metric=None, mode=None)
        self.core = core

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metrics and modes are the core's; Tune's single metric/mode is not used

    def suggest(self, trial_id: str):
        config = self.core.ask(trial_id)
        return Searcher.FINISHED if config is None else config

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.core.tell(trial_id, None if error else result)

    def save(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "wb") as f:
            pickle.dump({"core": self.core}, f)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as f:  # our own checkpoint, written by save()
            self.core = pickle.load(f)["core"]


def _trainable(config: dict, objective_name: str, fixed: dict, threads: int, use_gpu: bool) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
    placement = {"device": device, "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
                 "node_ip": ray.util.get_node_ip_address()}
    objective = get_objective(objective_name)
    objective.run({**fixed, **config}, report=lambda m: tune.report({**m, **placement}), device=device)


@dataclass(frozen=True)
class TrialOutcome:
    """Final state of one Ray trial."""

    trial_id: str
    config: Mapping[str, Any]
    metrics: Mapping[str, Any]
    error: str | None


def run_tuner(*, space: spaces.Space, objective_name: str, fixed: Mapping[str, Any], metrics: Sequence[str],
              modes: Sequence[str], settings: SearchSettings, storage_path: str, name: str,
              sink: TrialSink | None = None) -> list[TrialOutcome]:
    """Run the search to completion and return every trial's outcome."""
    if settings.searcher == "nevergrad":
        searcher = NevergradMOSearch(NevergradMO(space, metrics, modes, optimizer=settings.nevergrad_optimizer,
                                                 budget=settings.num_samples, num_workers=settings.max_concurrent,
                                                 seed=settings.seed))
    else:
        searcher = OptunaSearch(space=DefineByRun(space), metric=list(metrics), mode=list(modes),
                                sampler=make_sampler(settings.searcher, seed=settings.seed,
                                                     num_samples=settings.num_samples))
    trainable = tune.with_parameters(_trainable, objective_name=objective_name, fixed=dict(fixed),
                                     threads=int(max(1, settings.cpus_per_trial)),
                                     use_gpu=settings.gpus_per_trial > 0)
    trainable = tune.with_resources(trainable, {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=settings.num_samples,
                                    max_concurrent_trials=settings.max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=os.path.abspath(storage_path), verbose=0,
                                  callbacks=[_SinkCallback(sink)] if sink else None,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    grid = tuner.fit()
    outcomes = []
    for r in grid:
        tid = r.path.rstrip("/").rsplit("/", 1)[-1] if r.path else ""
        outcomes.append(TrialOutcome(trial_id=str(r.metrics.get("trial_id", tid)) if r.metrics else tid,
                                     config=dict(r.config or {}), metrics=dict(r.metrics or {}),
                                     error=str(r.error) if r.error else None))
    return outcomes
