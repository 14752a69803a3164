"""Ray trial events -> nested child runs in the tracking store, and the live Pareto front.

Runs on the driver, behind :class:`~gatesearch.search.tracking.outbox.Outbox` (one background thread,
in order, transient failures retried). Every method is safe to call again after a transient
failure part-way (the outbox retries the whole call): each store write is guarded by state
recorded only after it succeeded.

Cost per trial is constant in the number of trials: child run ids are kept in memory (the
store is searched only on resume, :meth:`MlflowTrialSink.restore`), each epoch is one batched
write (metrics + placement tags), and the front is updated in memory
(:class:`~gatesearch.search.front.live.LiveFront`). Every ``front_every`` finished trials the
hypervolume is logged (one write, O(|front|)); the front's artifacts and changed rank tags
(O(trials)) are written then too, unless the previous such write took more than
:data:`ARTIFACT_SHARE` (2%) of the time since it, in which case they wait (and always at the end).
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping

import numpy as np

from gatesearch.objectives import Objective
from gatesearch.objectives.metrics import EPOCH, HV_EPOCHS, HV_SECONDS, is_partial, is_reported_metric
from gatesearch.search.config.constraints import TAG_INFEASIBLE, Constraints
from gatesearch.search.front.live import LiveFront
from gatesearch.search.front.pareto import hypervolume, pareto_ranks, reference_point
from gatesearch.search.front.report import record_row, write_front
from gatesearch.search.lifecycle.trial_error import error_summary
from gatesearch.search.tracking.store import TAG_ERROR, TAG_INTERRUPTED, TAG_RANK, TrackingStore, TrialRecord
from gatesearch.spaces import trial_configuration

PLACEMENT_KEYS = ("device", "gpu_ids", "node_ip", "node_id")
TAG_STOPPED = "gatesearch.early_stopped_at_epoch"
TAG_RETRIES = "gatesearch.retries"
#: the front's artifacts may take at most this share of the driver's time during a search
ARTIFACT_SHARE = 0.02
#: what Ray Tune adds to every result (never logged as a user's metric)
RAY_RESULT_KEYS = frozenset({"training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "pid",
                             "hostname", "node_ip", "config", "trial_id", "experiment_tag", "date", "done",
                             "iterations_since_restore", "time_since_restore", "checkpoint_dir_name",
                             "should_checkpoint", *PLACEMENT_KEYS})
#: an epoch whose every metric is in the store already (read back on resume)
ALL_LOGGED = frozenset({"*"})


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)


class MlflowTrialSink:
    """Turns trial events into child runs of ``parent_id`` and keeps the search's front."""

    def __init__(self, store: TrackingStore, parent_id: str, search_id: str, objective: Objective,
                 fixed: Mapping[str, Any], front_every: int = 0, title: str = "", mirror=None,
                 constraints: Constraints | None = None):
        """``mirror``: an :class:`~gatesearch.search.tracking.optuna_mirror.OptunaMirror` that gets every
        finished trial too (for optuna-dashboard), or None. ``constraints``: the search's outcome
        constraints; a finished trial outside them is tagged :data:`TAG_INFEASIBLE` (why) and
        kept off the front."""
        self.store, self.parent_id, self.search_id = store, parent_id, search_id
        self.objective, self.fixed = objective, dict(fixed)
        self.names = tuple(m.name for m in objective.objectives)
        self.modes = tuple(m.mode for m in objective.objectives)
        self.front_every, self.title = front_every, title
        self.front = LiveFront(self.names, self.modes)
        self.hv_steps: set[int] = set()  # steps of the parent's hypervolume history already logged
        self.epochs_trained = 0  # epochs the search has trained (reported and logged), resumes included
        self.started_at: float | None = None  # the parent run's start (seconds since the epoch), read once
        self.constraints = constraints or Constraints()
        self.finished = 0
        self.reference: np.ndarray | None = None
        self.runs: dict[str, str] = {}  # trial id -> run id
        self.rows: dict[str, dict] = {}  # trial id -> summary row (the objective's front columns)
        self._params_logged: set[str] = set()
        self._pending_params: dict[str, dict] = {}  # described, not written yet (see _run)
        self._placed: set[str] = set()
        self._done: set[str] = set()  # trials whose completion/failure was recorded
        self._next_front = front_every or 0
        self._artifacts_at = -np.inf  # monotonic time of the last artifact write
        self._artifacts_cost = 0.0  # how long it took
        self.points: dict[str, list[dict]] = {}  # trial -> operating points (one trial, many front points)
        self.mirror = mirror
        self.configs: dict[str, dict] = {}  # trial -> its searched parameters (for the mirror)
        # trial -> epoch -> metric names in the store: every epoch is logged exactly once, whatever
        # restarts and replays (a retried or resumed trial, a resume's backfill from checkpoints)
        self.logged: dict[str, dict[int, frozenset[str]]] = {}
        self._interrupted: set[str] = set()  # ended KILLED by an interrupt; reopened when they continue
        self._described: set[str] = set()  # trials whose row was built from their configuration here
        self._unsure: set[tuple[str, int]] = set()  # (trial, epoch) whose metrics write failed: landed or not?
        self._unsure_runs: set[str] = set()  # trials whose run creation failed: created or not?
        # a user objective's own metric names are logged too (built-ins report only names of metrics.py)
        self._any_numeric = ":" in getattr(objective, "name", "")

    # -- runs ---------------------------------------------------------------------------------
    def restore(self, children: list[TrialRecord]) -> None:
        """Resume: know the existing child runs (by trial id) and rebuild the front from the
        finished ones, once."""
        columns, metrics = self.objective.front_columns, self.objective.summary_metrics
        for rec in children:
            self.runs.setdefault(rec.trial_id, rec.run_id)
            self.epochs_trained += int(rec.metrics.get(EPOCH.name, 0) or 0)
            # its summary row: a trial that was running when the search stopped finishes now
            self.rows.setdefault(rec.trial_id, record_row(rec, columns, ()))
            self._params_logged.add(rec.trial_id)
            if any(f"gatesearch.{k}" in rec.tags for k in PLACEMENT_KEYS):  # else its first result tags it
                self._placed.add(rec.trial_id)
            if rec.status == "KILLED" and TAG_INTERRUPTED in rec.tags:  # continues in this search
                self._interrupted.add(rec.trial_id)
            elif rec.status in ("FINISHED", "KILLED", "FAILED"):
                self._done.add(rec.trial_id)
            if rec.trial_id not in self._done:  # its trial continues: which epochs the store has
                self.logged[rec.trial_id] = self._stored_epochs(rec.run_id)
            if rec.status == "FINISHED" or (rec.status == "KILLED" and rec.trial_id in self._done):
                self.finished += 1
            if rec.status == "FINISHED":
                self.front.add(rec.trial_id, rec.run_id, rec.metrics, record_row(rec, columns, metrics),
                               infeasible=rec.tags.get(TAG_INFEASIBLE, ""))
                if self.mirror is not None:  # finished before, perhaps never mirrored
                    self.mirror.add_record(rec.trial_id, rec.params, rec.metrics)
            if rec.status == "FINISHED" and TAG_RANK in rec.tags:
                # the store holds this rank; a trial that finished after the last rank write (or
                # whose write was lost with the driver) has none and gets one at the next write
                self.front.mark_written(rec.run_id, int(rec.tags[TAG_RANK]))
        self._next_front = self.finished + (self.front_every or 0)

    def _run(self, trial_id: str, config: Mapping[str, Any] | None = None, defer_params: bool = False) -> str:
        """The trial's run id (created on first use). Its parameters are written now, or with
        ``defer_params`` kept for the trial's next batched write (:meth:`on_result`)."""
        if config is not None:
            self.configs.setdefault(trial_id, dict(config))
        if trial_id not in self.runs:
            params, row, label = self._describe(trial_configuration(self.fixed, config)) if config is not None else ({}, {}, "")
            # e.g. "comet n8 k2 #17": what the trial is, and its number in this search
            name = f"{label} #{len(self.runs) + 1}" if label else f"trial-{trial_id.rsplit('_', 1)[-1]}"
            self.runs[trial_id] = self._create_run(trial_id, name)
            self._pending_params[trial_id] = params
            self.rows[trial_id] = {"run_id": self.runs[trial_id], "trial": name, **row}
            self._described.add(trial_id)
        elif config is not None and trial_id not in self._described:  # a run made by an earlier driver
            self.rows[trial_id] = {"run_id": self.runs[trial_id], "trial": trial_id, **self.rows.get(trial_id, {}),
                                   **self._describe(trial_configuration(self.fixed, config))[1]}  # values, not the store's strings
            self._described.add(trial_id)
        run = self.runs[trial_id]
        if trial_id in self._interrupted:  # an interrupted trial continues after `gatesearch resume`
            self.store.reopen_run(run)
            self._interrupted.discard(trial_id)
        if not defer_params and trial_id in self._pending_params:
            self.store.log_batch(run, params=self._pending_params[trial_id])
            self._params_logged.add(trial_id)
            del self._pending_params[trial_id]
        return run

    def _create_run(self, trial_id: str, name: str) -> str:
        """A new child run for ``trial_id``; after a failed attempt (the store may have created it
        and lost only the answer) the store is asked first, so a trial never gets two runs."""
        if trial_id in self._unsure_runs:
            found = [c.run_id for c in self.store.children(self.parent_id) if c.trial_id == trial_id]
            self._unsure_runs.discard(trial_id)
            if found:
                return found[0]
        try:
            return self.store.create_trial_run(self.parent_id, self.search_id, trial_id, name)
        except BaseException:
            self._unsure_runs.add(trial_id)
            raise

    def _describe(self, cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
        """(params to log, summary row, run label) of a trial's configuration, resolved once:
        only the parameters active for this configuration, plus derived ones (e.g. COMET depth)."""
        try:
            full = self.objective.resolve(cfg)
        except ValueError:
            return dict(cfg), {}, ""
        return ({**self.objective.active(full), **self.objective.derived(full)}, self.objective.summary(full),
                self.objective.run_label(full))

    # -- events -------------------------------------------------------------------------------
    @staticmethod
    def merge(event: tuple[str, tuple], nxt: tuple[str, tuple]) -> tuple[str, tuple] | None:
        """Fold a trial's start and its first result (queued back to back under load) into one
        event: the run's parameters, metrics and placement then go in one batched write."""
        (method, args), (next_method, next_args) = event, nxt
        if method == "on_start" and next_method == "on_result" and args[0] == next_args[0]:
            return "on_first_result", (args[0], args[1], next_args[1])
        return None

    def on_start(self, trial_id: str, config: Mapping[str, Any]) -> None:
        self._run(trial_id, config)

    def on_first_result(self, trial_id: str, config: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        """:meth:`on_start` then :meth:`on_result`, with one write for params, metrics and tags."""
        self._run(trial_id, config, defer_params=True)
        self.on_result(trial_id, result)

    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        """Log one epoch's metrics at step ``epoch``; metrics already in the store for that epoch
        are not logged again (a trial restarted without a checkpoint reports its first epochs
        again; a resume backfills epochs from checkpoints), so each epoch is in MLflow once."""
        run = self._run(trial_id, result.get("config"), defer_params=True)
        step = int(result.get(EPOCH.name, result.get("training_iteration", 0)))  # Ray's own counter
        metrics = {k: v for k, v in result.items()
                   if is_reported_metric(k) or k in self.names
                   or (self._any_numeric and k not in RAY_RESULT_KEYS and _is_number(v))}
        if trial_id not in self.logged and trial_id in self._done:  # finished before this driver: ask the store
            self.logged[trial_id] = self._stored_epochs(run)
        seen = self.logged.setdefault(trial_id, {}).get(step, frozenset())
        metrics = {} if seen is ALL_LOGGED else {k: v for k, v in metrics.items() if k not in seen}
        tags = {}
        if trial_id not in self._placed:  # where the trial ran: device, Ray GPU ids, node
            tags = {f"gatesearch.{k}": result[k] for k in PLACEMENT_KEYS if k in result}
        params = self._pending_params.get(trial_id)
        if metrics and (trial_id, step) in self._unsure:  # a retry: the failed write may have landed
            landed = {s for s, _ in self.store.metric_history(run, next(iter(metrics)))}
            metrics = {} if step in landed else metrics  # a batch lands whole (one transaction) or not at all
        self._unsure.discard((trial_id, step))
        try:
            self.store.log_batch(run, params=params, metrics=metrics, tags=tags, step=step)
        except BaseException:
            # the store may have applied it and lost only the answer (a tracking server or its
            # database restarting): the outbox retries this call, which asks the store first
            if metrics:
                self._unsure.add((trial_id, step))
            raise
        if metrics:
            if not seen and EPOCH.name in result:  # a new epoch of this trial (a replayed one is not)
                self.epochs_trained += 1
            self.logged[trial_id][step] = seen | frozenset(metrics)
        self._placed.add(trial_id)
        if params is not None:
            self._params_logged.add(trial_id)
            del self._pending_params[trial_id]

    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None:
        run = self._run(trial_id, result.get("config"))
        if trial_id not in self._done:
            if result.get("operating_points"):  # e.g. the threshold baseline's budget sweep
                self.points[trial_id] = list(result["operating_points"])
                self.store.log_dict(run, {"operating_points": self.points[trial_id]}, "operating_points.json")
            if is_partial(result):  # stopped early by the scheduler: lower fidelity, not on the front
                self.store.log_batch(run, tags={TAG_STOPPED: int(result.get(EPOCH.name, 0))})
                self.store.end_run(run, "KILLED")
            else:
                why = self.constraints.why(result) if self.constraints else ""
                if why:  # finished, but outside the search's constraints: off the front
                    self.store.log_batch(run, tags={TAG_INFEASIBLE: why})
                self.store.end_run(run, "FINISHED")
                row = {**self.rows.get(trial_id, {"run_id": run}),
                       **{m: result.get(m) for m in self.objective.summary_metrics}}
                self.front.add(trial_id, run, result, row, infeasible=why)
                if self.mirror is not None:
                    self.mirror.add(trial_id, self.configs.get(trial_id, {}), result)
            self._done.add(trial_id)
            self.finished += 1
        if self.front_every and self.finished >= self._next_front:
            self.log_front(final=False)
            self._next_front = self.finished + self.front_every

    def on_retry(self, trial_id: str, failures: int) -> None:
        """Ray is retrying the trial after a failure (node death, crash): same child run."""
        self.store.log_batch(self._run(trial_id), tags={TAG_RETRIES: failures})

    def on_error(self, trial_id: str, error: str) -> None:
        run = self._run(trial_id)
        if trial_id in self._done:
            return
        self.store.log_batch(run, tags={TAG_ERROR: error_summary(error) if error.strip() else "error"})
        self.store.log_text(run, error, "error.txt")
        self.store.end_run(run, "FAILED")
        self._done.add(trial_id)

    def _stored_epochs(self, run_id: str) -> dict[int, frozenset[str]]:
        """The epochs a run already has in the store (read back once, on resume)."""
        return {step: ALL_LOGGED for step, _ in self.store.metric_history(run_id, self.names[0])}

    def interrupt_open(self, signal_name: str) -> None:
        """The search was interrupted: end every open child run ``KILLED``, tagged
        :data:`~gatesearch.search.tracking.store.TAG_INTERRUPTED` (``gatesearch resume`` reopens it when its
        trial continues), so no run is left RUNNING."""
        for trial_id, run in self.runs.items():
            if trial_id in self._done or trial_id in self._interrupted:
                continue
            self.store.log_batch(run, tags={TAG_INTERRUPTED: f"{signal_name}: the search was interrupted; "
                                                             f"`gatesearch resume` continues this trial"})
            self.store.end_run(run, "KILLED")
            self._interrupted.add(trial_id)

    # -- the front ----------------------------------------------------------------------------
    def log_front(self, final: bool = True) -> tuple[list[dict], list[dict], float, np.ndarray]:
        """Log the front now. The hypervolume reference point is fixed the first time (and
        recorded as the parent's ``reference_point`` param) so the history is comparable.
        Artifacts and rank tags are written when ``final`` or when their time share allows."""
        feasible = self.front.feasible() if len(self.front) else np.zeros(0, bool)
        if self.reference is None and feasible.any():  # inferred from the feasible trials only
            self.reference = reference_point(self.front.values()[feasible], self.modes)
            for j, (name, mode) in enumerate(zip(self.names, self.modes)):
                edge = self.constraints.edge(name, mode)  # a bound on an objective is the box's edge
                if edge is not None:
                    self.reference[j] = edge
            self.store.log_batch(self.parent_id, params={"reference_point": json.dumps(self.reference.tolist())})
        ref = self.reference if self.reference is not None else np.zeros(len(self.names))
        now = time.monotonic()
        artifacts = final or (now - self._artifacts_at) * ARTIFACT_SHARE >= self._artifacts_cost
        label = "trial"  # the run name, e.g. "comet n8 k2 #17"
        step = len(self.front)
        if self.started_at is None:
            start_time = getattr(self.store, "start_time", None)  # a store without it: this driver's start
            self.started_at = start_time(self.parent_id) if start_time is not None else time.time()
        progress = {HV_EPOCHS.name: self.epochs_trained, HV_SECONDS.name: round(time.time() - self.started_at, 3)}
        hv = write_front(self.store, self.parent_id, self.front, ref, title=self.title, step=step,
                         artifacts=artifacts, label=label, experiment_id=getattr(self.store, "experiment_id", ""),
                         metrics=step not in self.hv_steps, progress=progress)  # once per step, resumes included
        self.hv_steps.add(step)
        if artifacts:
            if self.points:
                self._log_point_front(ref)
            if self.mirror is not None:
                self.mirror.flush()
            self._artifacts_at, self._artifacts_cost = time.monotonic(), time.monotonic() - now
        return self.front.rows(), self.front.front_rows(), hv, ref

    def _log_point_front(self, ref: np.ndarray) -> None:
        """The front over every operating point of every trial (not only one point per trial)."""
        flat = [{"trial_id": t, "run_id": self.runs.get(t), **p} for t, pts in self.points.items() for p in pts]
        values = np.array([[p.get(n, np.nan) for n in self.names] for p in flat], dtype=float)
        ranks = pareto_ranks(values, self.modes)
        front = sorted((p for p, r in zip(flat, ranks) if r == 0), key=lambda p: p[self.names[1]])
        self.store.log_dict(self.parent_id, {"objectives": list(self.names), "front": front},
                            "operating_points_front.json")
        self.store.log_batch(self.parent_id, metrics={"operating_points_hypervolume":
                                                      hypervolume(values, self.modes, ref),
                                                      "operating_points": len(flat)}, step=self.finished)
