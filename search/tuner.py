"""Ray Tune: the only module that imports ray.

Builds and runs the Tuner: multi-objective ``OptunaSearch`` (define-by-run over our
:class:`spaces.Space`), a function trainable that calls the objective and reports
every epoch, and a driver-side callback that forwards trial events to a sink (the
MLflow logger lives in :mod:`search.tracking`).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from gatesearch import spaces
from gatesearch.objectives import get_objective
from gatesearch.objectives.metrics import EPOCH, EPOCHS_TOTAL, RESUMED_FROM, is_partial
from gatesearch.search.dedup import ConfigKey, ProposalMemory
from gatesearch.search.moasha import MOASHA
from gatesearch.search.nevergrad_mo import NevergradMO
from gatesearch.objectives.reports import EpochReports
from gatesearch.search.ray_state import HISTORY_FILE, TRIAL_DIR_PREFIX, StateBackup, repair_experiment_state
from gatesearch.search.searchers import SEARCHERS, make_sampler
from gatesearch.search.services import check_ray_address
from gatesearch.search.settings import SearchSettings

# TUNE_GLOBAL_CHECKPOINT_S: snapshot the experiment (trials + searcher state) every 2 s instead of
# every >= 10 s, so a killed driver loses at most ~2 s of bookkeeping (see ``resume_tuner``); for
# budgets above LARGE_SEARCH trials the snapshot (which grows with the trials) is left to Ray's
# adaptive period (>= 10 s, at most 5% of the driver's time): see ``_snapshot_period``.
# TUNE_DISABLE_AUTO_CALLBACK_LOGGERS: no per-trial TensorBoard/CSV files (MLflow has it all); the
# JSON logger is added back explicitly (_loggers), since Ray's per-trial history is read from it.
# TUNE_PRINT_ALL_TRIAL_ERRORS: a failed trial is one line of the progress (its traceback is the
# child run's error.txt), not Ray's ~60-line log record.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "RAY_AIR_NEW_OUTPUT": "0", "TUNE_MAX_PENDING_TRIALS_PG": "2", "TUNE_GLOBAL_CHECKPOINT_S": "2",
           "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}
#: MO-ASHA's rung records, in a subdirectory of the experiment directory (Ray does not save
#: schedulers). Not at its top level: on restore Ray copies the top-level *.json/*.pkl files into its
#: driver staging directory and later syncs that copy back up, which overwrote the records the
#: resumed search had written with the ones it had started from.
RUNGS_FILE = os.path.join(".gatesearch-rungs", "moasha_rungs.json")
#: a trial's training state inside its Ray Tune checkpoint (objectives/checkpoint.py)
CHECKPOINT_FILE = "state.pt"
LARGE_SEARCH = 1000


#: Ray keeps every checkpoint *directory*, but only the newest holds a training state: once a new
#: checkpoint is persisted, the trial deletes ``state.pt`` from its older ones (:func:`_prune_states`),
#: so the disk per trial is one training state plus an empty directory per epoch. Ray's own pruning
#: (``num_to_keep=1``) is not used: the experiment snapshot Ray restores after a driver kill can be
#: older than the newest checkpoint and name a deleted directory ("does not exist on storage
#: anymore"); a kept directory without a state makes the trial look for the newest state among its
#: siblings instead (:func:`_load_state`).
CHECKPOINTS = tune.CheckpointConfig(num_to_keep=None)


#: Ray Tune's own closing messages that would mislead a gatesearch user: the failed trials are
#: already one line each (progress) with their traceback in MLflow, and an interrupted search is
#: finished with `gatesearch resume`, not the `Tuner.restore(...)` call Tune prints
_RAY_NOISE = ("Trials did not complete", "Experiment has been interrupted", "Stop signal received")


def _without_ray_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_RAY_NOISE)


logging.getLogger("ray.tune.tune").addFilter(_without_ray_noise)


def _snapshot_period(num_samples: int) -> None:
    """Every 2 s for searches up to LARGE_SEARCH trials; Ray's adaptive period above (a 10,000-trial
    snapshot takes long enough that every 2 s it would dominate the driver). Also switches off
    Tune's own SIGINT handler: :mod:`gatesearch.search.interrupt` handles SIGINT and SIGTERM (Tune's
    would stop the loop but leave the search looking finished) and stops Tune through
    :class:`_StopAll`."""
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "2" if num_samples <= LARGE_SEARCH else "auto"
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    # a report without an optimised metric is EpochReports' to judge (MissingMetric: the trial fails
    # with the reason), not Ray's strict check (it raised on the driver and ended the whole search)
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"


def quiet_ray_env() -> None:
    """Ray settings for a quiet, loopback-only, local instance (set before ray.init)."""
    for k, v in RAY_ENV.items():
        os.environ.setdefault(k, v)


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to ``address``, or start a private local instance (never an existing one by accident)."""
    if ray.is_initialized():
        return
    quiet_ray_env()
    _loopback_only(not address)
    if address:
        check_ray_address(address)  # fail in seconds, not after minutes of Ray's own retries
        with _keep_signal_handlers():
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    else:
        with _own_session(), _keep_signal_handlers():
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, logging_level="ERROR",
                     log_to_driver=False)


@contextmanager
def _keep_signal_handlers():
    """Ray's core worker installs its own SIGTERM handler in the driver during ``ray.init`` (it
    prints a crash dump and aborts); put the Python handlers back afterwards, so a SIGTERM while the
    search starts is handled like a Ctrl-C (the CLI and :mod:`~gatesearch.search.interrupt`).
    SIGTERM is blocked meanwhile (a signal that comes is delivered to our handler right after; the
    processes Ray starts unblock it, see :func:`_own_session`)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    except SystemExit as e:
        if e.code == signal.SIGTERM:  # Ray's handler during init: sys.exit(15)
            raise KeyboardInterrupt("SIGTERM") from None
        raise
    finally:
        for s, handler in previous.items():
            if handler is not None:
                signal.signal(s, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@contextmanager
def _own_session():
    """Start the private local instance's processes (GCS, raylet and, through it, the workers) in
    a session of their own, so that a signal meant for the driver's process group (``timeout``
    sends SIGTERM to the whole group, a terminal sends Ctrl-C to it) does not kill Ray under the
    driver while it stops the search gracefully (:mod:`gatesearch.search.interrupt`). They still
    die with the driver (Ray's fate sharing) and are stopped by ``ray.shutdown``. Ray has no
    public option for this: its process launcher (``ray._private.services.ConsolePopen``) is
    wrapped for the duration of ``ray.init``; if it is ever renamed, nothing is wrapped
    (tested: ``test_interrupt.py`` sends SIGTERM to the whole group)."""
    from ray._private import services

    original = getattr(services, "ConsolePopen", None)
    if original is None or os.name != "posix":
        yield
        return

    class _NewSession(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("start_new_session", True)
            ray_preexec = kwargs.get("preexec_fn")

            def preexec():
                if ray_preexec is not None:
                    ray_preexec()
                # the driver blocks SIGTERM while Ray starts (_keep_signal_handlers); Ray's processes
                # must not inherit that (ray.shutdown stops them with SIGTERM)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

            kwargs["preexec_fn"] = preexec
            super().__init__(*args, **kwargs)

    services.ConsolePopen = _NewSession
    try:
        yield
    finally:
        services.ConsolePopen = original


def check_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Raise ``ValueError`` when no node of the cluster can ever hold one trial (Ray would keep
    the trial pending forever). Checked once Ray is up, before the search starts."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus_per_trial and r.get("GPU", 0) >= gpus_per_trial for r in nodes):
        return
    have = ", ".join(f"{r.get('CPU', 0):g} CPU/{r.get('GPU', 0):g} GPU" for r in nodes) or "no nodes"
    raise ValueError(f"cpus_per_trial={cpus_per_trial:g}, gpus_per_trial={gpus_per_trial:g}: no node of the Ray "
                     f"cluster can hold one trial (nodes: {have}), so no trial would ever start; lower the "
                     f"per-trial resources in `search:` or add a node that has them")


def _loopback_only(on: bool) -> None:
    """Make the private local instance bind 127.0.0.1 only (GCS, raylet, object manager, workers).

    Ray resolves 127.0.0.1 to the machine's routable address (``resolve_ip_for_localhost``)
    and binds its servers on all interfaces unless multi-node support is switched off, which
    Ray reads from RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, at import. We set the variable
    for the child processes and the already-imported constant for this one. A cluster
    connection (``address`` given) needs multi-node support, so it is switched back on.
    """
    from ray._private import ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0" if on else "1"
    ray_constants.ENABLE_RAY_CLUSTER = not on


def shutdown_ray() -> None:
    if ray.is_initialized():
        ray.shutdown()


class TrialSink(Protocol):
    """Receives trial events on the driver."""

    def on_start(self, trial_id: str, config: Mapping[str, Any]) -> None: ...
    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None: ...
    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None: ...
    def on_error(self, trial_id: str, error: str) -> None: ...
    def on_retry(self, trial_id: str, failures: int) -> None: ...


class _SinkCallback(tune.Callback):
    """Forwards trial events to the sink, and keeps a backup of Ray's experiment state
    (:class:`~gatesearch.search.ray_state.StateBackup`: when it changed, within a time share). Ray pickles the
    run config (callbacks included) into ``tuner.pkl``; the sink (an MLflow client) is left out
    and re-attached on resume."""

    def __init__(self, sink: TrialSink | None, experiment_dir: str | None = None):
        self.sink, self.experiment_dir = sink, experiment_dir
        self._backup = StateBackup(experiment_dir) if experiment_dir else None

    def __getstate__(self):
        return {"sink": None, "experiment_dir": None, "_backup": None}

    def on_step_end(self, iteration, trials, **info):
        if self._backup is not None:
            self._backup.maybe()

    def on_step_begin(self, iteration, trials, **info):
        if self._backup is not None:
            self._backup.maybe()

    def on_trial_recover(self, iteration, trials, trial, **info):
        # Ray retries the trial (FailureConfig.max_failures); it keeps its id, hence its child run
        if self.sink is not None:
            self.sink.on_retry(trial.trial_id, int(trial.num_failures))

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.sink is None:
            return
        self.sink.on_start(trial.trial_id, dict(trial.config))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.sink is None:
            return
        self.sink.on_result(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.sink is None:
            return
        self.sink.on_complete(trial.trial_id, dict(trial.last_result or {}))

    def on_trial_error(self, iteration, trials, trial, **info):
        if self.sink is None:
            return
        err = ""
        if trial.error_file and os.path.exists(trial.error_file):
            with open(trial.error_file, encoding="utf-8", errors="replace") as f:
                err = f.read()
        self.sink.on_error(trial.trial_id, err or "trial failed (no error file)")


class _LiveStop:
    """The running fit's stop predicate and whether it fired (set by :func:`_fit`). Module state,
    not the stopper's: Ray restores a resumed experiment's stopper from its saved state
    (``TuneController.__setstate__``), not the one handed to the restored Tuner, so a stopper
    cannot carry the live predicate."""

    predicate: Callable[[], bool] | None = None
    fired: bool = False


class _StopAll(tune.Stopper):
    """Ends the experiment when the live predicate (:class:`_LiveStop`) turns true: tracking is
    gone, or SIGINT/SIGTERM (:mod:`gatesearch.search.interrupt`). Stateless, so Ray's saved copy
    of it works as well as the original.

    Preferably the way Ctrl+C does: Tune's own SIGUSR1 handler (installed by ``fit`` on the
    main thread) stops the loop and saves the experiment with the running trials unfinished,
    so ``Tuner.restore`` runs them again and the budget is kept. Without that handler, all
    trials are stopped (they end as partial results).
    """

    def __call__(self, trial_id, result) -> bool:
        return False

    def stop_all(self) -> bool:
        if not (_LiveStop.predicate and _LiveStop.predicate()):
            return False
        if callable(signal.getsignal(signal.SIGUSR1)):
            if not _LiveStop.fired:  # once: Tune's handler ends the loop
                _LiveStop.fired = True
                os.kill(os.getpid(), signal.SIGUSR1)
            return False
        _LiveStop.fired = True
        return True


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


class MOASHAScheduler(FIFOScheduler):
    """Ray adapter over :class:`search.moasha.MOASHA`: stops trials at rungs.

    Ray Tune never saves a scheduler's state (``Tuner.restore`` brings back the one pickled at the
    start, with empty rungs), so the rung records are written to ``RUNGS_FILE`` under the experiment
    directory whenever a trial reaches a rung, and :func:`resume_tuner` loads them back."""

    def __init__(self, core: MOASHA, metrics: Sequence[str], state_dir: str | None = None):
        super().__init__()
        self.core, self.metrics, self.state_dir = core, list(metrics), state_dir
        self.stopped: list[str] = []

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if not all(m in result for m in self.metrics) or EPOCH.name not in result:
            return TrialScheduler.CONTINUE
        epoch = int(result[EPOCH.name])
        go = self.core.decide(trial.trial_id, epoch, [float(result[m]) for m in self.metrics])
        if epoch in self.core.rungs:
            self.save_rungs()
        if go:
            return TrialScheduler.CONTINUE
        self.stopped.append(trial.trial_id)
        return TrialScheduler.STOP

    def save_rungs(self) -> None:
        """Write the rung records (atomically: a killed driver leaves the previous file)."""
        if not self.state_dir:
            return
        path = os.path.join(self.state_dir, RUNGS_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.core.records(), f)
        os.replace(tmp, path)

    def load_rungs(self, state_dir: str) -> int:
        """Resume: read the rung records of ``state_dir`` (and write there from now on)."""
        self.state_dir = state_dir
        path = os.path.join(state_dir, RUNGS_FILE)
        if not os.path.exists(path):  # a search started before the records moved to a subdirectory
            path = os.path.join(state_dir, os.path.basename(RUNGS_FILE))
        if not os.path.exists(path):
            return 0
        with open(path, encoding="utf-8") as f:
            return self.core.load(json.load(f))


class Deduplicated(Searcher):
    """Wraps a searcher so a configuration the search already evaluated is not run again
    (:mod:`gatesearch.search.dedup`): the proposal is answered with the stored result (or, if the
    configuration is running now, with its result when it ends) and the searcher asked again.
    Answered repeats never become Ray trials, so they are not charged against ``num_samples``.

    The wrapped searcher sees its own proposal ids: the first proposal of a Ray trial has the
    trial's id, repeats asked for the same trial get ``<trial id>~<n>``."""

    #: proposals asked in one suggest() call before Ray is told to ask again later
    PER_CALL = 64

    def __init__(self, inner: Searcher, key: Callable[[Mapping[str, Any]], str]):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.memory = inner, ProposalMemory(key)
        self.alias: dict[str, str] = {}  # Ray trial id -> the inner searcher's proposal id

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.inner.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str):
        names = (trial_id if n == 0 else f"{trial_id}~{n}" for n in range(self.PER_CALL))
        got = self.memory.propose(self.inner.suggest,
                                  lambda proposal, result: self.inner.on_trial_complete(proposal, result, error=False),
                                  names, is_end=lambda c: c is None or c == Searcher.FINISHED)
        if got.outcome == "new":
            self.memory.start(trial_id, got.key)
            self.alias[trial_id] = got.proposal
            return got.config
        if got.outcome == "end":
            return got.config
        if got.outcome == "exhausted":
            logging.getLogger(__name__).warning(
                "the searcher proposed %d already evaluated configurations in a row: the space looks "
                "exhausted, so the search ends here", self.memory.repeats_in_a_row)
            return Searcher.FINISHED
        return None  # only repeats so far: Ray asks again (with a new trial id) on its next step

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(self.alias.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.inner.on_trial_complete(self.alias.pop(trial_id, trial_id), result, error=error)
        waiting, final = self.memory.end(trial_id, None if error or result is None else result)
        for proposal in waiting:  # repeats of this configuration proposed while it ran: told the same
            self.inner.on_trial_complete(proposal, final, error=error if final is None else False)

    def save(self, checkpoint_path: str) -> None:
        import pickle

        self.inner.save(checkpoint_path)
        with open(checkpoint_path, "rb") as f:
            inner = f.read()
        with open(checkpoint_path, "wb") as f:
            pickle.dump({DEDUP_STATE: self.memory.state(), "inner": inner, "alias": self.alias}, f)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as f:  # our own checkpoint, written by save()
            state = pickle.load(f)
        if not (isinstance(state, dict) and DEDUP_STATE in state):  # written without deduplication
            self.inner.restore(checkpoint_path)
            return
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(state["inner"])
        try:
            self.inner.restore(tmp.name)
        finally:
            os.unlink(tmp.name)
        self.memory.load(state[DEDUP_STATE])
        self.alias = dict(state.get("alias", {}))


#: the key of the deduplication state in a searcher checkpoint
DEDUP_STATE = "gatesearch.dedup"


class FullFidelityOnly(Searcher):
    """Wraps a searcher so early-stopped trials never reach it as final results: their
    lower-fidelity result is withheld and the trial is reported as ended without a result and
    without an error, which Ray's ``OptunaSearch`` records as ``PRUNED``.

    Pruned, not failed: Optuna's TPE puts pruned trials in its "bad" group, so it learns to
    propose away from configurations MO-ASHA stopped; a FAIL is ignored, so TPE kept proposing
    what was then stopped again (on ``bench/search_quality.py``'s surrogate, TPE + MO-ASHA spent
    400 trials on 560–720 epochs and never reached random search's 100-trial hypervolume on most
    seeds). The other samplers model completed trials only, so for them both are the same."""

    def __init__(self, inner: Searcher):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self.final: list[str] = []
        self.withheld: list[str] = []

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.inner.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str):
        return self.inner.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        if not error and is_partial(result):
            self.withheld.append(trial_id)
            self.inner.on_trial_complete(trial_id, None, error=False)  # Optuna: PRUNED
        else:
            if not error:
                self.final.append(trial_id)
            self.inner.on_trial_complete(trial_id, result, error=error)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)


def checkpoints_trials(objective) -> bool:
    """Whether trials of ``objective`` are checkpointed: it says so, and its ``run`` (perhaps
    overridden by a subclass) takes ``restore`` and ``save``."""
    if not getattr(objective, "checkpoints", False):
        return False
    params = inspect.signature(objective.run).parameters
    return ("restore" in params and "save" in params) or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _trainable(config: dict, objective_name: str, fixed: dict, threads: int, use_gpu: bool,
               objective: Any = None) -> None:
    """One trial: resolve the configuration, run the objective, report every epoch to Tune.

    Every report goes through :class:`~gatesearch.objectives.reports.EpochReports`: it numbers
    epochs the objective does not number, and fails the trial (with the reason) on a non-finite
    or missing objective value, at the epoch it appears or in ``run``'s return value. For
    checkpointing objectives each report carries the epoch's training state, and the results so
    far are kept beside it (:data:`~gatesearch.search.ray_state.HISTORY_FILE`)."""
    import torch

    torch.set_num_threads(max(1, threads))
    device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
    node_id = ray.get_runtime_context().get_node_id()
    # the address the node registered with (ray start --node-ip-address), not a guess from routing
    node_ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id),
                   ray.util.get_node_ip_address())
    placement = {"device": device, "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()),
                 "node_ip": node_ip, "node_id": node_id}
    objective = objective if objective is not None else get_objective(objective_name)
    full = objective.resolve({**fixed, **config})
    placement[EPOCHS_TOTAL.name] = int(full.get("epochs", 0))
    names = [m.name for m in objective.objectives]
    if not checkpoints_trials(objective):
        reports = EpochReports(names, lambda m: tune.report({**m, **placement}))
        reports.finish(objective.run(full, report=reports, device=device))
        return
    # Per-epoch checkpoints (Ray Tune's API; see CHECKPOINTS for what is kept): a
    # trial restarted after a node death, a retry or `gatesearch resume` continues after its last
    # epoch, and since it reports only the epochs it trains, no epoch reaches MLflow twice.
    restore, pending = None, []
    last = tune.get_checkpoint()
    if last is not None:
        restore = _load_state(last, device)
    history: list[dict] = list(restore.pop("history", [])) if restore is not None else []
    if restore is not None:
        placement[RESUMED_FROM.name] = int(restore["epoch"])
        if int(restore["epoch"]) >= int(full.get("epochs", 0)) and restore.get("metrics"):
            # it had finished (its result lost with a stale experiment snapshot): report it again
            tune.report({**restore["metrics"], **placement})
            return

    def send(metrics):
        result = {**metrics, **placement}
        if not pending:
            tune.report(result)
            return
        with tempfile.TemporaryDirectory(prefix="gs-ckpt") as d:
            state = pending.pop()
            state["metrics"] = dict(metrics)  # a trial restored after its last epoch reports these
            torch.save(state, os.path.join(d, CHECKPOINT_FILE))
            history.append(_jsonable(result))
            with open(os.path.join(d, HISTORY_FILE), "w", encoding="utf-8") as f:
                json.dump(history, f)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(d))
        _prune_states(tune.get_checkpoint())  # now the one just persisted

    reports = EpochReports(names, send, first_epoch=int(restore["epoch"]) + 1 if restore is not None else 1)
    reports.finish(objective.run(full, report=reports, device=device, restore=restore, save=pending.append))


def _jsonable(result: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-representable entries of a result (numbers as floats/ints, strings)."""
    out = {}
    for k, v in result.items():
        if isinstance(v, (bool, int, str)) or v is None:
            out[k] = v
        elif isinstance(v, float) or hasattr(v, "__float__"):
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                continue
    return out


def _checkpoint_dirs(checkpoint) -> list[str]:
    """The trial's checkpoint directories on ``checkpoint``'s storage, newest first."""
    import posixpath

    from pyarrow import fs as pafs

    parent = posixpath.dirname(checkpoint.path.rstrip("/"))
    infos = checkpoint.filesystem.get_file_info(pafs.FileSelector(parent))
    dirs = [i.path for i in infos if i.type == pafs.FileType.Directory
            and posixpath.basename(i.path).startswith("checkpoint_")]
    return sorted(dirs, reverse=True)  # checkpoint_000012 > checkpoint_000011


def _load_state(checkpoint, device: str):
    """The newest readable training state among the trial's checkpoints (``checkpoint`` is the one
    Ray restored, perhaps older than the newest: see :data:`CHECKPOINTS`), or None to start over."""
    import io
    import pickle

    import torch

    try:
        candidates = _checkpoint_dirs(checkpoint)
    except OSError as e:
        candidates = [checkpoint.path]
        logging.getLogger(__name__).warning("cannot list the trial's checkpoints (%s)", e)
    for path in candidates:
        try:
            with checkpoint.filesystem.open_input_file(f"{path}/{CHECKPOINT_FILE}") as f:
                data = f.read()
            state = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
            state["history"] = _read_history(checkpoint.filesystem, path)
            return state
        except FileNotFoundError:
            continue  # a pruned older checkpoint
        except (OSError, RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as e:
            # e.g. cut short by a node death
            logging.getLogger(__name__).warning("skipping an unreadable checkpoint %s (%s)", path, e)
    logging.getLogger(__name__).warning("trial restarts from scratch: none of its checkpoints is readable")
    return None


def _read_history(filesystem, path: str) -> list[dict]:
    """The results kept beside a checkpoint's state ([] for a checkpoint written before they were)."""
    try:
        with filesystem.open_input_file(f"{path}/{HISTORY_FILE}") as f:
            history = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return []
    return history if isinstance(history, list) else []


def _prune_states(current) -> None:
    """Delete the training state of every checkpoint of the trial older than ``current``."""
    if current is None:
        return
    import posixpath

    newest = posixpath.basename(current.path.rstrip("/"))
    for path in _checkpoint_dirs(current):
        if posixpath.basename(path) < newest:
            for name in (CHECKPOINT_FILE, HISTORY_FILE):
                try:
                    current.filesystem.delete_file(f"{path}/{name}")
                except FileNotFoundError:
                    continue


@dataclass(frozen=True)
class TrialOutcome:
    """Final state of one Ray trial."""

    trial_id: str
    config: Mapping[str, Any]
    metrics: Mapping[str, Any]
    error: str | None
    early_stopped: bool = False
    history: tuple[Mapping[str, Any], ...] = ()  # every reported result, oldest first (Ray's records)


def trial_dirname(trial) -> str:
    """``trial_<trial id>``: short paths, and the id is recoverable from the directory name."""
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def _trainable_with_resources(objective_name: str, fixed: Mapping[str, Any], settings: SearchSettings,
                              objective: Any = None):
    """The trainable with its resources. ``objective``: an objective instance to ship to the
    workers (a user's training function, whose metrics come from the space file); None: the
    workers look ``objective_name`` up in the registry."""
    trainable = tune.with_parameters(_trainable, objective_name=objective_name, fixed=dict(fixed),
                                     threads=int(max(1, settings.cpus_per_trial)),
                                     use_gpu=settings.gpus_per_trial > 0, objective=objective)
    return tune.with_resources(trainable, {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial})


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


def run_tuner(*, space: spaces.Space, objective_name: str, fixed: Mapping[str, Any], metrics: Sequence[str],
              modes: Sequence[str], settings: SearchSettings, storage_path: str, name: str,
              sink: TrialSink | None = None, max_epochs: int = 1,
              should_stop: Callable[[], bool] | None = None,
              objective: Any = None) -> tuple[list[TrialOutcome], dict[str, int]]:
    """Run the search to completion (or until ``should_stop()``); return every trial's outcome
    and searcher/scheduler counts."""
    spec = SEARCHERS[settings.searcher]
    if spec.sampler is None:  # our own multi-objective Tune searcher over the spec's ask/tell core
        searcher = NevergradMOSearch(spec.core(space, metrics, modes, seed=settings.seed, budget=settings.num_samples,
                                               num_workers=settings.max_concurrent,
                                               nevergrad_optimizer=settings.nevergrad_optimizer,
                                               capped=not settings.dedup))
    else:  # Ray's multi-objective OptunaSearch with the spec's sampler
        searcher = OptunaSearch(space=DefineByRun(space), metric=list(metrics), mode=list(modes),
                                sampler=make_sampler(settings.searcher, seed=settings.seed,
                                                     num_samples=settings.num_samples))
    dedup = Deduplicated(searcher, ConfigKey(objective_name, dict(fixed))) if settings.dedup else None
    searcher = FullFidelityOnly(dedup or searcher)
    scheduler = None
    if settings.scheduler == "moasha":
        scheduler = MOASHAScheduler(MOASHA(modes=list(modes), max_t=max_epochs, grace=settings.moasha_grace,
                                           eta=settings.moasha_eta), metrics,
                                    state_dir=os.path.join(os.path.abspath(storage_path), name))
    _snapshot_period(settings.num_samples)
    tuner = tune.Tuner(
        _trainable_with_resources(objective_name, fixed, settings, objective),
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=settings.num_samples,
                                    max_concurrent_trials=settings.max_concurrent, reuse_actors=True,
                                    trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name=name, storage_path=os.path.abspath(storage_path), verbose=0,
                                  callbacks=[_SinkCallback(sink, os.path.join(os.path.abspath(storage_path), name)),
                                             JsonLoggerCallback()],
                                  stop=_StopAll(), checkpoint_config=CHECKPOINTS,
                                  failure_config=tune.FailureConfig(max_failures=settings.max_failures)),
    )
    outcomes = _outcomes(_fit(tuner, should_stop))
    counts = {"stopped_by_request": int(_LiveStop.fired), "searcher_final": len(searcher.final),
              "searcher_withheld": len(searcher.withheld),
              "scheduler_stopped": len(scheduler.stopped) if scheduler else 0,
              "searcher_deduplicated": dedup.memory.answered if dedup else 0}
    return outcomes, counts


def can_resume(experiment_dir: str) -> bool:
    """Whether Ray left a restorable experiment state in ``experiment_dir``."""
    return tune.Tuner.can_restore(os.path.abspath(experiment_dir))


def resume_tuner(*, experiment_dir: str, objective_name: str, fixed: Mapping[str, Any], settings: SearchSettings,
                 sink: TrialSink | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 objective: Any = None) -> tuple[list[TrialOutcome], dict[str, int]]:
    """Finish an interrupted search from Ray's last experiment snapshot.

    ``Tuner.restore`` brings back the trial table, the scheduler and the searcher state
    (the searcher is re-loaded from its own checkpoint in the experiment dir, so Optuna/
    Nevergrad continue with every result they had been told). Finished and errored trials
    are kept as they are; unfinished ones continue after their last per-epoch checkpoint (from
    scratch for an objective that does not checkpoint).
    Counts are derived from the outcomes (the searcher object is Ray's restored copy).
    """
    _snapshot_period(settings.num_samples)
    repaired = repair_experiment_state(experiment_dir)
    if repaired:
        logging.getLogger(__name__).warning(repaired)
    tuner = tune.Tuner.restore(os.path.abspath(experiment_dir),
                               _trainable_with_resources(objective_name, fixed, settings, objective),
                               resume_unfinished=True, resume_errored=False, restart_errored=False)
    # The pickled callback lost its live parts (see _SinkCallback.__getstate__): attach the live one.
    # (Ray restores the stopper from the experiment state; it is stateless, see _LiveStop.)
    run_config = tuner._local_tuner.get_run_config()
    run_config.callbacks = [_SinkCallback(sink, os.path.abspath(experiment_dir)), JsonLoggerCallback()]
    scheduler = tuner._local_tuner._tune_config.scheduler  # the one pickled at the start: empty rungs
    if isinstance(scheduler, MOASHAScheduler):
        restored = scheduler.load_rungs(os.path.abspath(experiment_dir))
        logging.getLogger(__name__).info("MO-ASHA: %d rung records restored", restored)
    outcomes = _outcomes(_fit(tuner, should_stop))
    restored = getattr(tuner._local_tuner._tune_config.search_alg, "inner", None)  # under FullFidelityOnly
    answered = restored.memory.answered if isinstance(restored, Deduplicated) else 0
    return outcomes, {**_counts(outcomes), "searcher_deduplicated": answered,
                      "stopped_by_request": int(_LiveStop.fired)}


def _fit(tuner, should_stop: Callable[[], bool] | None):
    """``tuner.fit()`` with ``should_stop`` as the live stop predicate (see :class:`_LiveStop`)."""
    _LiveStop.predicate, _LiveStop.fired = should_stop, False
    try:
        return tuner.fit()
    finally:
        _LiveStop.predicate = None
