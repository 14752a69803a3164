"""One search once its folder and stores are open: the Tuner run (or resumed) with a buffered MLflow
sink, the progress display, interrupts and fail-fast, then the front logged and the parent closed.
On resume, orphaned child runs are retired and what Ray recorded but the store never received is
written back."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from gatesearch.objectives.metrics import EPOCH, HYPERVOLUME
from gatesearch.search import ray as ray_tuner
from gatesearch.search.config.plan import SearchPlan
from gatesearch.search.lifecycle.failures import FailureWatch, SearchFailing
from gatesearch.search.lifecycle.interrupt import Interrupts, SearchInterrupted
from gatesearch.search.lifecycle.manifest import Manifest
from gatesearch.search.lifecycle.result import SearchResult
from gatesearch.search.lifecycle.warm_start import WarmStart
from gatesearch.search.ray.state import checkpointed_history, repair_experiment_state, snapshot_trial_ids
from gatesearch.search.system import redact
from gatesearch.search.system.file_lock import is_postgres
from gatesearch.search.tracking.insights import log_insights
from gatesearch.search.tracking.optuna_mirror import OptunaMirror, optuna_storage
from gatesearch.search.tracking.outbox import BufferedSink, Outbox, TeeSink
from gatesearch.search.tracking.store import TAG_INTERRUPTED
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.search.tracking.trial_sink import MlflowTrialSink
from gatesearch.search.ui.progress import SearchProgress

TAG_ORPHANED = "gatesearch.orphaned"


def study_name(manifest: Manifest) -> str:
    """The Optuna study mirroring a search (see :mod:`gatesearch.search.tracking.optuna_mirror`)."""
    return f"{manifest.experiment}-{manifest.search_id}"


def _open_tracker(uri: str, experiment: str, out: Path) -> Tracker:
    # A local SQLite store (or a database used without a server) keeps artifacts in the output
    # folder; a tracking server decides for itself.
    location = (out / "artifacts").as_uri() if uri.startswith("sqlite:") or is_postgres(uri) else None
    return Tracker(uri, experiment, artifact_location=location)


def _open_sink(tracker: Tracker, parent: str, manifest: Manifest, plan: SearchPlan, search_dir: Path,
               resume: bool) -> tuple[MlflowTrialSink, OptunaMirror, set[str]]:
    """The MLflow sink of the search (and its Optuna mirror). On resume, the only time the store is
    read back: the known runs, the front so far and its reference point; the orphans retired.
    Returns the sink, the mirror and the retired trial ids."""
    names, modes = plan.names, plan.modes
    mirror = OptunaMirror(optuna_storage(manifest.output_dir, manifest.optuna_storage), study_name(manifest),
                          plan.space, names, modes)
    sink = MlflowTrialSink(tracker, parent, manifest.search_id, plan.objective, plan.fixed,
                           front_every=plan.settings.front_every, title=plan.sf.name, mirror=mirror,
                           constraints=plan.constraints)
    retired: set[str] = set()
    if resume:
        ref = tracker.params(parent).get("reference_point")
        sink.reference = np.array(json.loads(ref), dtype=float) if ref else None
        retired = _restore(sink, tracker, parent, manifest.ray_dirs(search_dir))
        sink.hv_steps = {step for step, _ in tracker.metric_history(parent, HYPERVOLUME.name)}
    elif plan.settings.reference_point is not None:  # the user's box from the first trial on (logged by _start)
        sink.reference = np.array(plan.settings.reference_for(names), dtype=float)
    return sink, mirror, retired


def _progress(plan: SearchPlan, sink: MlflowTrialSink, progress: str | None, resume: bool) -> SearchProgress | None:
    """The terminal's view of the search (None: nothing shown, the API's default)."""
    if progress is None:
        return None
    names = plan.names
    return SearchProgress(
        plan.objective, plan.settings.num_samples, fixed=plan.fixed, live={"live": True, "plain": False}.get(progress),
        done=sink.finished if resume else 0, reference=lambda: sink.reference,
        earlier=[(e.trial_id, dict(zip(names, e.values)), e.row.get("infeasible", "")) for e in sink.front.entries],
        run_name=lambda t: sink.rows.get(t, {}).get("trial"), constraints=plan.constraints,
        paused=ray_tuner.paused_trials)


def drive(*, tracker: Tracker, parent: str, manifest: Manifest, plan: SearchPlan, search_dir: Path, resume: bool,
          progress: str | None = None, warm: WarmStart | None = None) -> SearchResult:
    """Run (or resume) the Tuner with a buffered MLflow sink; log the front; close the parent.

    SIGINT/SIGTERM stop it resumably (:mod:`~gatesearch.search.lifecycle.interrupt`): the open child runs
    and the parent end ``KILLED``, the manifest says ``interrupted`` and
    :class:`~gatesearch.search.lifecycle.interrupt.SearchInterrupted` is raised."""
    sf, objective, settings = plan.sf, plan.objective, plan.settings
    ray_dirs = manifest.ray_dirs(search_dir)  # the current Ray experiment last (an extension's, or the search dir)
    sink, mirror, retired = _open_sink(tracker, parent, manifest, plan, search_dir, resume)
    constraints = plan.constraints
    outbox = Outbox(sink, Tracker.is_transient, settings.tracking_timeout_s, describe=f"MLflow at {redact.shown(tracker.uri)}")
    shown = _progress(plan, sink, progress, resume)
    interrupts, entered = Interrupts(checkpointed=ray_tuner.checkpoints_trials(objective)), False
    watch, failing = FailureWatch(settings.fail_fast), False
    if shown is not None:
        shown.stopping = lambda: interrupts.requested is not None or watch.tripped is not None
    t0 = time.time()
    status = "FAILED"
    with interrupts.catching():
        try:
            ray_tuner.ensure_ray(address=manifest.address)
            common = dict(objective_name=sf.objective, fixed=sf.fixed, settings=settings,
                          sink=TeeSink(BufferedSink(outbox), shown, watch),
                          should_stop=lambda: (outbox.failed or interrupts.requested is not None
                                               or watch.tripped is not None),
                          objective=objective if sf.metrics else None,  # not the registered instance: ship it
                          plugins=sf.plugins, resources=plan.resources)
            if not resume:  # a resumed search's searcher and scheduler are Ray's restored copies
                common["constraints"] = constraints
                common["warm"] = warm.known if warm else ()
            try:
                if shown is not None:
                    shown.__enter__()
                    entered = True
                outcomes, counts = _tune(plan, manifest, ray_dirs, resume, common)
            except Exception:
                outbox.raise_if_failed()  # the root cause, if tracking failed first
                raise
            stopped = counts.pop("stopped_by_request", 0) and not outbox.failed
            if stopped and interrupts.requested is not None:
                status = "KILLED"
                outbox.call("interrupt_open", interrupts.requested)
            elif stopped and watch.tripped is not None:  # repeated failures: stopped as an interrupt is
                status, failing = "KILLED", True
                outbox.call("interrupt_open", "fail_fast")
            outbox.flush()  # raises TrackingUnavailable if the store never came back
            orphans = len(retired) if resume else 0
            backfilled = _backfill(sink, tracker, parent, outcomes) if resume and status != "KILLED" else 0
            epochs = sum(int(o.metrics.get(EPOCH.name, 0)) for o in outcomes)
            tracker.log_metrics(parent, {**counts, "orphaned_trials": orphans, "backfilled_trials": backfilled,
                                         "tracking_retries": outbox.retries,
                                         "tracking_outage_seconds": outbox.outage_seconds,
                                         **outbox.timing(),
                                         "epochs_trained": epochs}, step=len(outcomes))
            if status == "KILLED":
                if sink.reference is not None:  # keep the artifacts current; never fix the reference on a partial front
                    sink.log_front()
                if failing:
                    raise SearchFailing(watch.tripped, watch.cause, len(watch.failures), sink.finished,
                                        str(search_dir))
                raise SearchInterrupted(interrupts.requested, sink.finished, settings.num_samples, str(search_dir))
            rows, front, hv, ref = sink.log_front()
            found = _insights(tracker, parent, mirror, plan, ref)
            status = "FINISHED"
        except KeyboardInterrupt:
            # a second signal: stop at once, but leave no child RUNNING (bounded: the store may hang)
            status = "KILLED"
            try:
                outbox.call("interrupt_open", interrupts.requested or "SIGINT")
                outbox.flush(timeout_s=10)
            except Exception:  # noqa: BLE001 - best effort; resume retires or reopens what is left
                pass
            raise SearchInterrupted(interrupts.requested or "SIGINT", sink.finished, settings.num_samples,
                                    str(search_dir)) from None
        finally:
            if entered:  # after the final front: its last line shows the hypervolume printed at the end
                shown.interrupted = status == "KILLED"
                shown.__exit__(None, None, None)
            wall = time.time() - t0
            try:
                tracker.log_metrics(parent, {"wall_seconds": wall}, step=0)
                tracker.end_run(parent, status)
            except Exception:  # noqa: BLE001 - the store may be the thing that failed; keep the original error
                if status == "FINISHED":
                    raise
            manifest_status = {"FINISHED": "finished", "KILLED": "interrupted"}.get(status, "failed")
            replace(manifest, status=manifest_status).write(search_dir)
    return _result(plan, manifest, tracker, parent, search_dir, sink, mirror, outcomes, counts, rows, front, hv, ref,
                   wall, orphans, epochs, outbox.retries, warm, found)


def _insights(tracker: Tracker, parent: str, mirror: OptunaMirror, plan: SearchPlan, ref) -> dict:
    """The importances and the hypervolume-over-time figure of a finished search, on its parent run
    (:mod:`~gatesearch.search.tracking.insights`). They add to the result: a failure to compute them is
    a warning, not a failed search."""
    try:
        return log_insights(tracker, parent, mirror.study, plan.names, plan.modes, [float(v) for v in ref],
                            plan.sf.name)
    except Exception as e:  # noqa: BLE001 - the front and every trial are logged already
        logging.getLogger(__name__).warning("the importances and the hypervolume-over-time figure were not "
                                            "logged: %s: %s", type(e).__name__, e)
        return {}

def _tune(plan: SearchPlan, manifest: Manifest, ray_dirs: list[Path], resume: bool, common: dict):
    """The Tuner: Ray's saved experiment resumed, or a new one (a new search, or an extension whose
    searcher and MO-ASHA continue from the previous experiment's state). Returns the outcomes and counts."""
    ray_dir = ray_dirs[-1]
    if resume and ray_tuner.can_resume(str(ray_dir)):
        return ray_tuner.resume_tuner(experiment_dir=str(ray_dir), **common)
    if manifest.extensions:
        common["settings"] = replace(plan.settings, num_samples=int(manifest.extensions[-1][1]))
        common["searcher_state"] = str(ray_dirs[-2])
        common.setdefault("constraints", plan.constraints)
    return ray_tuner.run_tuner(space=plan.space, metrics=plan.names, modes=plan.modes, storage_path=str(ray_dir.parent),
                               name=ray_dir.name, max_epochs=plan.max_epochs, **common)


def _result(plan: SearchPlan, manifest: Manifest, tracker: Tracker, parent: str, search_dir: Path,
            sink: MlflowTrialSink, mirror: OptunaMirror, outcomes, counts: dict, rows, front, hv: float, ref,
            wall: float, orphans: int, epochs: int, retries: int, warm: WarmStart | None,
            importances: dict) -> SearchResult:
    """What the finished search returns (and the CLI prints)."""
    objective = plan.objective
    return SearchResult(search_id=manifest.search_id, parent_run_id=parent, tracking_uri=tracker.uri,
                        experiment=plan.sf.name, objectives=plan.names, modes=plan.modes, trials=rows, front=front,
                        hypervolume=hv, reference_point=tuple(ref.tolist()), wall_seconds=wall,
                        output_dir=manifest.output_dir, failed=sum(1 for o in outcomes if o.error),
                        search_dir=str(search_dir), columns=objective.front_columns,
                        summary_metrics=objective.summary_metrics, experiment_id=tracker.experiment_id,
                        optuna_storage=mirror.storage, optuna_study=mirror.study_name,
                        extra={**counts, "orphaned": orphans,
                               "early_stopped": sum(1 for o in outcomes if o.early_stopped),
                               "infeasible": sink.front.infeasible_count(),
                               **({"warm_start": warm.describe()} if warm else {}),
                               "epochs_trained": epochs, "tracking_retries": retries},
                        importances=importances)


def _backfill(sink: MlflowTrialSink, tracker: Tracker, parent: str, outcomes) -> int:
    """Write to MLflow what Ray recorded but the store never received (events dropped while it
    was unreachable before a search stopped): each trial's per-epoch results from Ray's own
    records, then its final state. For a trial whose child run is already terminal, only the
    epochs its run lacks (a checkpointed trial resumed after an outage reports only the epochs it
    trains, so the ones lost in the outage come from Ray's records). Returns the trials written."""
    children = {c.trial_id: c for c in tracker.children(parent)}
    n = 0
    for o in outcomes:
        child = children.get(o.trial_id)
        if child is not None and child.status in ("FINISHED", "FAILED", "KILLED"):
            have = {step for step, _ in tracker.metric_history(child.run_id, sink.names[0])}
            missing = [r for r in o.history if EPOCH.name in r and int(r[EPOCH.name]) not in have]
            for result in missing:
                sink.on_result(o.trial_id, result)
            n += bool(missing)
            continue
        sink.on_start(o.trial_id, o.config)
        for result in o.history:
            sink.on_result(o.trial_id, result)
        if o.error:
            sink.on_error(o.trial_id, o.error)
        else:
            sink.on_complete(o.trial_id, o.metrics)
        n += 1
    return n


def _restore(sink: MlflowTrialSink, tracker: Tracker, parent: str, ray_dirs: list[Path]) -> set[str]:
    """Resume (or extend): retire the orphans (:func:`_retire_orphans`) against Ray's last
    snapshots, then restore the sink from the other child runs. Retiring first means the resumed
    front, its hypervolume history and the trial counts never include an orphan (they once did until
    the search ended: a hypervolume step past the budget, found by CI's driver-kill test).
    ``ray_dirs``: the search's Ray experiments, the current one last (``gatesearch extend`` adds
    one; the trials of the earlier ones are in their own snapshots). Returns the retired trial ids."""
    search_dir = ray_dirs[-1]
    repaired = repair_experiment_state(search_dir)  # the snapshot Tuner.restore will read
    if repaired:
        logging.getLogger(__name__).warning(repaired)
    children = tracker.children(parent)
    known = set().union(*(snapshot_trial_ids(d) for d in ray_dirs))
    retired = _retire_orphans(tracker, children, known)
    sink.restore([c for c in children if c.trial_id not in retired])
    # Epochs a trial checkpointed but whose metrics never reached the store (the driver died, or
    # was interrupted, between the trial's report and the write): logged from the metrics kept
    # beside the checkpoint, before the trial continues after it. The sink skips what it has.
    for child in children:
        if child.trial_id not in retired and child.status not in ("FINISHED", "FAILED"):
            for result in checkpointed_history(search_dir, child.trial_id):
                sink.on_result(child.trial_id, result)
    return retired


def _retire_orphans(tracker: Tracker, children, known: set[str]) -> set[str]:
    """Child runs of trials Ray's last snapshot never recorded (started after it, then lost with
    the driver): the resumed searcher proposes replacements, so these are marked KILLED and
    tagged, keeping exactly one finished child per trial of the budget. ``children``: the
    parent's child runs; ``known``: the snapshot's trial ids. Returns the retired trial ids."""
    retired = set()
    for child in children:
        interrupted = child.status == "KILLED" and TAG_INTERRUPTED in child.tags
        if child.trial_id not in known and (child.status in ("RUNNING", "FINISHED") or interrupted):
            tracker.set_tags(child.run_id, {TAG_ORPHANED: "lost with the driver before Ray's experiment snapshot; "
                                                          "its slot was re-proposed on resume"})
            tracker.end_run(child.run_id, "KILLED")
            retired.add(child.trial_id)
    return retired
