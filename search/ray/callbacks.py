"""What the driver hears from Ray Tune: trial events forwarded to the search's sink, and the stopper
that ends the fit when the search must stop (tracking gone, SIGINT/SIGTERM).

Both are stateless: their live parts are in :class:`~gatesearch.search.ray.live.Live`, so the copies
Ray restores on ``gatesearch resume`` work as well as the originals.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any, Mapping, Protocol

from ray import tune

from gatesearch.search.ray.live import Live
from gatesearch.search.ray.state import StateBackup

#: Ray Tune's own closing messages that would mislead a gatesearch user: the failed trials are
#: already one line each (progress) with their traceback in MLflow, and an interrupted search is
#: finished with `gatesearch resume`, not the `Tuner.restore(...)` call Tune prints
_RAY_NOISE = ("Trials did not complete", "Experiment has been interrupted", "Stop signal received")


def _without_ray_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_RAY_NOISE)


logging.getLogger("ray.tune.tune").addFilter(_without_ray_noise)


class TrialSink(Protocol):
    """Receives trial events on the driver."""

    def on_start(self, trial_id: str, config: Mapping[str, Any]) -> None: ...
    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None: ...
    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None: ...
    def on_error(self, trial_id: str, error: str) -> None: ...
    def on_retry(self, trial_id: str, failures: int) -> None: ...


class SinkCallback(tune.Callback):
    """Forwards trial events to the live sink, and keeps a backup of Ray's experiment state
    (:class:`~gatesearch.search.ray.state.StateBackup`: when it changed, within a time share)."""

    def __init__(self):
        self._backup: StateBackup | None = None
        self._dir: str | None = None

    def __getstate__(self):
        return {"_backup": None, "_dir": None}

    def _maybe_backup(self) -> None:
        if Live.experiment_dir is None:
            return
        if self._backup is None or self._dir != Live.experiment_dir:
            self._backup, self._dir = StateBackup(Live.experiment_dir), Live.experiment_dir
        self._backup.maybe()

    def on_step_end(self, iteration, trials, **info):
        self._maybe_backup()

    def on_step_begin(self, iteration, trials, **info):
        self._maybe_backup()

    def on_trial_recover(self, iteration, trials, trial, **info):
        # Ray retries the trial (FailureConfig.max_failures); it keeps its id, hence its child run
        if Live.sink is not None:
            Live.sink.on_retry(trial.trial_id, int(trial.num_failures))

    def on_trial_start(self, iteration, trials, trial, **info):
        if Live.sink is not None:
            Live.sink.on_start(trial.trial_id, dict(trial.config))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if Live.sink is not None:
            Live.sink.on_result(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if Live.sink is not None:
            Live.sink.on_complete(trial.trial_id, dict(trial.last_result or {}))

    def on_trial_error(self, iteration, trials, trial, **info):
        if Live.sink is None:
            return
        err = ""
        if trial.error_file and os.path.exists(trial.error_file):
            with open(trial.error_file, encoding="utf-8", errors="replace") as f:
                err = f.read()
        Live.sink.on_error(trial.trial_id, err or "trial failed (no error file)")


class StopAll(tune.Stopper):
    """Ends the experiment when the live predicate (:class:`~gatesearch.search.ray.live.Live`) turns
    true: tracking is gone, or SIGINT/SIGTERM (:mod:`gatesearch.search.lifecycle.interrupt`).

    Preferably the way Ctrl+C does: Tune's own SIGUSR1 handler (installed by ``fit`` on the
    main thread) stops the loop and saves the experiment with the running trials unfinished,
    so ``Tuner.restore`` runs them again and the budget is kept. Without that handler, all
    trials are stopped (they end as partial results).
    """

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        if not (Live.predicate and Live.predicate()):
            return False
        if callable(signal.getsignal(signal.SIGUSR1)):
            if not Live.fired:  # once: Tune's handler ends the loop
                Live.fired = True
                os.kill(os.getpid(), signal.SIGUSR1)
            return False
        Live.fired = True
        return True
