"""Ray Tune, composed: the only package that imports ``ray``.

``run_tuner`` builds a Tuner from the search's parts — the searcher (:mod:`.searcher`: every
registered ask/tell core behind one adapter, deduplicated, full-fidelity results only), MO-ASHA
(:mod:`.scheduler`), the trainable (:mod:`.trainable`, per-epoch checkpoints in :mod:`.checkpoints`),
the callbacks forwarding trial events to the search's sink and stopping it on request
(:mod:`.callbacks`) — and runs it; ``resume_tuner`` finishes an interrupted one from Ray's saved
experiment. The Ray runtime itself is :mod:`.cluster`'s.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ray import tune
from ray.tune.logger import JsonLoggerCallback

from gatesearch import spaces
from gatesearch.objectives.metrics import is_partial
from gatesearch.search.config.settings import SearchSettings
from gatesearch.search.loop.composition import warm_start
from gatesearch.search.loop.dedup import ConfigKey
from gatesearch.search.ray.callbacks import SinkCallback, StopAll, TrialSink
from gatesearch.search.ray.checkpoints import CHECKPOINTS
from gatesearch.search.ray.cluster import check_resources, ensure_ray, quiet_ray_env, shutdown_ray, tune_settings
from gatesearch.search.ray.live import Live
from gatesearch.search.ray.scheduler import RUNGS_FILE, MOASHAScheduler
from gatesearch.search.ray.searcher import CoreSearcher, Deduplicated, FullFidelityOnly, UnpausedLimit
from gatesearch.search.ray.state import TRIAL_DIR_PREFIX, repair_experiment_state
from gatesearch.search.ray.trainable import checkpoints_trials, trainable, trial_dirname
from gatesearch.search.schedulers.registry import SCHEDULERS, SchedulerRequest
from gatesearch.search.searchers.registry import SEARCHERS

__all__ = ["RUNGS_FILE", "TrialOutcome", "TrialSink", "can_resume", "check_resources", "checkpoints_trials",
           "ensure_ray", "quiet_ray_env", "resume_tuner", "run_tuner", "shutdown_ray"]


@dataclass(frozen=True)
class TrialOutcome:
    """Final state of one Ray trial."""

    trial_id: str
    config: Mapping[str, Any]
    metrics: Mapping[str, Any]
    error: str | None
    early_stopped: bool = False
    history: tuple[Mapping[str, Any], ...] = ()  # every reported result, oldest first (Ray's records)


def _outcomes(grid) -> list[TrialOutcome]:
    outcomes = []
    for r in grid:
        base = r.path.rstrip("/").rsplit("/", 1)[-1] if r.path else ""
        tid = base[len(TRIAL_DIR_PREFIX):] if base.startswith(TRIAL_DIR_PREFIX) else base
        frame = r.metrics_dataframe
        history = tuple(frame.to_dict("records")) if frame is not None else ()
        outcomes.append(TrialOutcome(trial_id=tid, config=dict(r.config or {}), metrics=dict(r.metrics or {}),
                                     error=str(r.error) if r.error else None,
                                     early_stopped=is_partial(r.metrics), history=history))
    return outcomes


def _counts(outcomes: Sequence[TrialOutcome]) -> dict[str, int]:
    partial = sum(1 for o in outcomes if o.error is None and o.early_stopped)
    return {"searcher_final": sum(1 for o in outcomes if o.error is None and not o.early_stopped),
            "searcher_withheld": partial, "scheduler_stopped": partial}


def _fit(tuner, *, sink: TrialSink | None, experiment_dir: str, should_stop: Callable[[], bool] | None):
    """``tuner.fit()`` with the live sink, experiment directory and stop predicate (:class:`Live`)."""
    Live.start(sink=sink, experiment_dir=os.path.abspath(experiment_dir), predicate=should_stop)
    try:
        return tuner.fit()
    finally:
        Live.end()


def _searcher(core, settings: SearchSettings, key: ConfigKey, warm) -> tuple[FullFidelityOnly, Any, int]:
    """The searcher Ray Tune runs: the core behind the adapter, deduplicated (``settings.dedup``), told
    an earlier search's results (warm start), behind the full-fidelity rule. Returns it, the
    deduplication wrapper (None without) and how many warm-start results the core took."""
    Live.deduplicated = None
    searcher = CoreSearcher(core)
    dedup = Deduplicated(searcher, key) if settings.dedup else None
    told = warm_start(core, dedup.memory if dedup is not None else None, warm)  # told, not trained
    return FullFidelityOnly(dedup or searcher), dedup, told


def _continue_from(searcher: FullFidelityOnly, searcher_state: str, experiment_dir: str, n: int) -> None:
    """``gatesearch extend``: the searcher continues from an earlier experiment's saved state with ``n``
    more proposals, and MO-ASHA from its rung records (copied into the new experiment)."""
    searcher.restore_from_dir(searcher_state)
    searcher.extend(n)
    saved = os.path.join(searcher_state, RUNGS_FILE)
    if os.path.exists(saved) and not os.path.exists(os.path.join(experiment_dir, RUNGS_FILE)):
        os.makedirs(os.path.dirname(os.path.join(experiment_dir, RUNGS_FILE)), exist_ok=True)
        shutil.copyfile(saved, os.path.join(experiment_dir, RUNGS_FILE))


def _tuner(trainable_, searcher, scheduler, settings: SearchSettings, storage_path: str, name: str):
    """A Ray Tune ``Tuner`` over the trainable, with our searcher, scheduler, callbacks, stopper,
    checkpoints and failure policy (after ``tune_settings``)."""
    return tune.Tuner(
        trainable_,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=settings.num_samples,
                                    max_concurrent_trials=settings.max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name=name, storage_path=os.path.abspath(storage_path), verbose=0,
                                  callbacks=[SinkCallback(), JsonLoggerCallback()],
                                  stop=StopAll(), checkpoint_config=CHECKPOINTS,
                                  failure_config=tune.FailureConfig(max_failures=settings.max_failures)),
    )


def run_tuner(*, space: spaces.Space, objective_name: str, fixed: Mapping[str, Any], metrics: Sequence[str],
              modes: Sequence[str], settings: SearchSettings, storage_path: str, name: str,
              sink: TrialSink | None = None, max_epochs: int = 1,
              should_stop: Callable[[], bool] | None = None,
              objective: Any = None, plugins: Sequence[str] = (),
              resources: Any = None, constraints: Any = None,
              warm: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]] = (),
              searcher_state: str | None = None) -> tuple[list[TrialOutcome], dict[str, int]]:
    """Run the search to completion (or until ``should_stop()``); return every trial's outcome
    and searcher/scheduler counts. ``constraints`` (outcome constraints) go to the searcher and
    to MO-ASHA; ``warm`` (configuration, result) pairs of an earlier search are told to the
    searcher first (``tell_known``) and known to deduplication. ``searcher_state``: an earlier
    Ray experiment of the same search (``gatesearch extend``): the searcher continues from its
    saved state (everything it was told, the deduplication memory) and MO-ASHA from its rungs, for
    ``settings.num_samples`` more trials."""
    rungs = SCHEDULERS[settings.scheduler].build(SchedulerRequest(tuple(modes), tuple(metrics), max_epochs, settings))
    core = SEARCHERS[settings.searcher].core(space, metrics, modes, seed=settings.seed, budget=settings.num_samples,
                                             num_workers=settings.max_concurrent,
                                             nevergrad_optimizer=settings.nevergrad_optimizer,
                                             capped=not settings.dedup, constraints=constraints,
                                             fidelities=rungs.milestones if rungs and settings.moasha_rung_model else ())
    guard, dedup, told = _searcher(core, settings, ConfigKey(objective_name, dict(fixed), objective), warm)
    experiment_dir = os.path.join(os.path.abspath(storage_path), name)
    if searcher_state is not None:  # an extension: the searcher's saved state, a budget of num_samples more
        _continue_from(guard, searcher_state, experiment_dir, settings.num_samples)
    searcher, scheduler = guard, None
    if rungs is not None:
        scheduler = MOASHAScheduler(rungs, metrics, constraints=constraints, max_concurrent=settings.max_concurrent)
        if rungs.promote:  # paused trials do not count against max_concurrent
            searcher = UnpausedLimit(guard, settings.max_concurrent)
    tune_settings(settings.num_samples)
    tuner = _tuner(trainable(objective_name, fixed, settings, objective, plugins, resources), searcher, scheduler,
                   settings, storage_path, name)
    outcomes = _outcomes(_fit(tuner, sink=sink, experiment_dir=experiment_dir, should_stop=should_stop))
    counts = {"stopped_by_request": int(Live.fired), "searcher_final": len(guard.final),
              "searcher_withheld": len(guard.withheld),
              "scheduler_stopped": len(scheduler.stopped) if scheduler else 0,
              "searcher_deduplicated": dedup.memory.answered if dedup else 0, "warm_start_told": told}
    if hasattr(core, "asked_from"):  # the rung model: proposals sampled from a rung's study (not the full one)
        counts["rung_model_proposals"] = sum(n for fidelity, n in core.asked_from.items() if fidelity)
    return outcomes, counts


def paused_trials() -> list[str]:
    """The trials of the running fit waiting at a MO-ASHA rung (promotion mode), for the progress display."""
    return list(Live.scheduler.paused_ids) if Live.scheduler is not None else []


def can_resume(experiment_dir: str) -> bool:
    """Whether Ray left a restorable experiment state in ``experiment_dir``."""
    return tune.Tuner.can_restore(os.path.abspath(experiment_dir))


def resume_tuner(*, experiment_dir: str, objective_name: str, fixed: Mapping[str, Any], settings: SearchSettings,
                 sink: TrialSink | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 objective: Any = None, plugins: Sequence[str] = (),
                 resources: Any = None) -> tuple[list[TrialOutcome], dict[str, int]]:
    """Finish an interrupted search from Ray's last experiment snapshot.

    ``Tuner.restore`` brings back the trial table, the scheduler and the searcher state
    (the searcher is re-loaded from its own checkpoint in the experiment dir, so Optuna/
    Nevergrad continue with every result they had been told). Finished and errored trials
    are kept as they are; unfinished ones continue after their last per-epoch checkpoint (from
    scratch for an objective that does not checkpoint). The restored callbacks, stopper and
    scheduler are Ray's copies; they read the live sink, stop predicate and experiment directory
    from :class:`~gatesearch.search.ray.live.Live` (MO-ASHA reads its rung records from there).
    Counts are derived from the outcomes (the searcher object is Ray's restored copy).
    """
    tune_settings(settings.num_samples)
    repaired = repair_experiment_state(experiment_dir)
    if repaired:
        logging.getLogger(__name__).warning(repaired)
    Live.deduplicated = None
    tuner = tune.Tuner.restore(os.path.abspath(experiment_dir), trainable(objective_name, fixed, settings, objective,
                                                                          plugins, resources),
                               resume_unfinished=True, resume_errored=False, restart_errored=False)
    outcomes = _outcomes(_fit(tuner, sink=sink, experiment_dir=experiment_dir, should_stop=should_stop))
    answered = Live.deduplicated.memory.answered if Live.deduplicated is not None else 0
    return outcomes, {**_counts(outcomes), "searcher_deduplicated": answered, "stopped_by_request": int(Live.fired)}
