"""One search, end to end: validate, run on Ray, log to MLflow, compute and log the front."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gatesearch.objectives import Objective
from gatesearch.objectives.function import FunctionObjective
from gatesearch.objectives.metrics import EPOCH, HYPERVOLUME
from gatesearch.search import ray as ray_tuner
from gatesearch.search import redact
from gatesearch.search.file_lock import is_postgres
from gatesearch.search.constraints import from_space_file as constraints_of
from gatesearch.search.dir_guard import OutputFolderUse, SearchDirLock, check_trusted, private_files, umask
from gatesearch.search.failures import FailureWatch, SearchFailing
from gatesearch.search.interrupt import Interrupts, SearchInterrupted
from gatesearch.search.store import TAG_INTERRUPTED
from gatesearch.search.manifest import MANIFEST, SPACE_COPY, Manifest, extension_base, find_search_dir
from gatesearch.search.optuna_mirror import OptunaMirror, optuna_storage
from gatesearch.search.outbox import BufferedSink, Outbox, TeeSink
from gatesearch.search.progress import SearchProgress
from gatesearch.search.ray_state import checkpointed_history, repair_experiment_state, snapshot_trial_ids
from gatesearch.search.services import check_optuna_storage, check_tracking_uri
from gatesearch.search.resources import from_space_file, requirements
from gatesearch.search.settings import SearchSettings
from gatesearch.search.tracking import Tracker
from gatesearch.search.trial_sink import MlflowTrialSink
from gatesearch.search.validate import max_epochs, validate_space_file
from gatesearch.search.warm_start import TAG_FROM, TAG_FROM_URI, WarmStart, load_warm_start
from gatesearch.spaces import Fixed, SpaceFile, parse_space_file

DEFAULT_OUTPUT = "gatesearch-runs"


def default_tracking_uri(output_dir: str | Path) -> str:
    """``sqlite:///<abs output dir>/mlflow.db`` (MLflow 3 has no file store)."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


@dataclass(frozen=True)
class SearchResult:
    """What a search left behind (:func:`run_search`, :func:`resume_search`,
    :func:`extend_search`; :func:`gatesearch.load_search` reads one back from its store).

    ``trials``: one row per finished trial (its parameters, objectives, ``run_id``, ``trial``, and
    ``pareto_rank`` where known); ``front``: the rows of the non-dominated feasible trials;
    ``failures``: one row per failed trial (``trial``, ``run_id``, ``reason``); ``hypervolume`` of
    the front inside the box from ``reference_point``. In a notebook: :attr:`trials_df`,
    :attr:`front_df` (pandas) and :meth:`plot` (a matplotlib figure, shown inline).
    """

    search_id: str
    parent_run_id: str
    tracking_uri: str
    experiment: str
    objectives: tuple[str, ...]
    modes: tuple[str, ...]
    trials: list[dict[str, Any]]
    front: list[dict[str, Any]]
    hypervolume: float
    reference_point: tuple[float, ...]
    wall_seconds: float
    output_dir: str = ""
    search_dir: str = ""
    failed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()  # the objective's front columns (what each trial was)
    experiment_id: str = ""
    optuna_storage: str = ""  # every finished trial, mirrored for optuna-dashboard
    optuna_study: str = ""
    summary_metrics: tuple[str, ...] = ()  # extra metrics shown beside the objectives
    failures: tuple[Mapping[str, Any], ...] = ()  # failed trials: trial, run_id, reason
    status: str = "finished"  # the manifest's: finished, interrupted, running, failed

    @property
    def trials_df(self):
        """Every trial as a ``pandas.DataFrame``: the finished ones (``status`` FINISHED, their
        parameters and metrics, ``on_front``), then the failed ones (``status`` FAILED, ``reason``)."""
        import pandas as pd

        front = {r.get("run_id") for r in self.front}
        rows = [{**r, "status": "FINISHED", "on_front": r.get("run_id") in front} for r in self.trials]
        rows += [{**f, "status": "FAILED", "on_front": False} for f in self.failures]
        return pd.DataFrame(rows)

    @property
    def front_df(self):
        """The Pareto front as a ``pandas.DataFrame`` (one row per non-dominated feasible trial)."""
        import pandas as pd

        return pd.DataFrame([dict(r) for r in self.front])

    def plot(self, title: str | None = None):
        """The front and every finished trial as a matplotlib figure (displayed inline by Jupyter;
        ``fig.savefig(path)`` to keep it)."""
        from gatesearch.search.figure import pareto_figure

        values = np.array([[float(r.get(n, np.nan)) for n in self.objectives] for r in self.trials], dtype=float)
        front = {r.get("run_id") for r in self.front}
        on_front = np.array([r.get("run_id") in front for r in self.trials], dtype=bool)
        infeasible = np.array([bool(r.get("infeasible")) for r in self.trials], dtype=bool)
        return pareto_figure(values.reshape(len(self.trials), len(self.objectives)), on_front, self.objectives,
                             self.modes, labels=[str(r.get("trial", "")) for r in self.trials],
                             title=title or self.experiment, infeasible=infeasible)


def latest_search(tracker: Tracker) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The most recent parent run of the tracker's experiment and its objectives/modes
    (the parent's ``objective`` param names the objective)."""
    parents = tracker.searches()
    if not parents:
        raise ValueError(f"experiment {tracker.experiment!r} has no gatesearch search runs")
    run_id, params = parents[0]
    pairs = [p.split(":") for p in params.get("objectives", "").split(",") if ":" in p]
    if not pairs:
        raise ValueError(f"search run {run_id} does not record its objectives")
    return run_id, tuple(n for n, _ in pairs), tuple(m for _, m in pairs)


TAG_ORPHANED = "gatesearch.orphaned"


def study_name(manifest: Manifest) -> str:
    """The Optuna study mirroring a search (see :mod:`gatesearch.search.optuna_mirror`)."""
    return f"{manifest.experiment}-{manifest.search_id}"


def _open_tracker(uri: str, experiment: str, out: Path) -> Tracker:
    # A local SQLite store (or a database used without a server) keeps artifacts in the output
    # folder; a tracking server decides for itself.
    location = (out / "artifacts").as_uri() if uri.startswith("sqlite:") or is_postgres(uri) else None
    return Tracker(uri, experiment, artifact_location=location)


def _drive(*, tracker: Tracker, parent: str, manifest: Manifest, sf: SpaceFile, objective: Objective,
           settings: SearchSettings, search_dir: Path, resume: bool, progress: str | None = None,
           warm: WarmStart | None = None) -> SearchResult:
    """Run (or resume) the Tuner with a buffered MLflow sink; log the front; close the parent.

    SIGINT/SIGTERM stop it resumably (:mod:`~gatesearch.search.interrupt`): the open child runs
    and the parent end ``KILLED``, the manifest says ``interrupted`` and
    :class:`~gatesearch.search.interrupt.SearchInterrupted` is raised."""
    names = tuple(m.name for m in objective.objectives)
    modes = tuple(m.mode for m in objective.objectives)
    ray_dirs = manifest.ray_dirs(search_dir)
    ray_dir = ray_dirs[-1]  # the current Ray experiment (the search dir, or the latest extension's)
    mirror = OptunaMirror(optuna_storage(manifest.output_dir, manifest.optuna_storage), study_name(manifest),
                          sf.space, names, modes)
    constraints = constraints_of(sf, objective)
    sink = MlflowTrialSink(tracker, parent, manifest.search_id, objective, sf.fixed,
                           front_every=settings.front_every, title=sf.name, mirror=mirror, constraints=constraints)
    if resume:  # the only time the store is read back: known runs, and the front so far
        ref = tracker.params(parent).get("reference_point")
        sink.reference = np.array(json.loads(ref), dtype=float) if ref else None
        retired = _restore(sink, tracker, parent, manifest.ray_dirs(search_dir))
        sink.hv_steps = {step for step, _ in tracker.metric_history(parent, HYPERVOLUME.name)}
    elif settings.reference_point is not None:  # the user's box from the first trial on (logged by _start)
        sink.reference = np.array(settings.reference_for(names), dtype=float)
    outbox = Outbox(sink, Tracker.is_transient, settings.tracking_timeout_s, describe=f"MLflow at {redact.shown(tracker.uri)}")
    shown = None if progress is None else SearchProgress(
        objective, settings.num_samples, fixed=sf.fixed, live={"live": True, "plain": False}.get(progress),
        done=sink.finished if resume else 0, reference=lambda: sink.reference,
        earlier=[(e.trial_id, dict(zip(names, e.values)), e.row.get("infeasible", "")) for e in sink.front.entries],
        run_name=lambda t: sink.rows.get(t, {}).get("trial"), constraints=constraints,
        paused=ray_tuner.paused_trials)
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
                          objective=objective if isinstance(objective, FunctionObjective) else None,
                          plugins=sf.plugins,
                          resources=from_space_file(sf, settings.cpus_per_trial, settings.gpus_per_trial))
            if not resume:  # a resumed search's searcher and scheduler are Ray's restored copies
                common["constraints"] = constraints
                common["warm"] = warm.known if warm else ()
            try:
                if shown is not None:
                    shown.__enter__()
                    entered = True
                if resume and ray_tuner.can_resume(str(ray_dir)):
                    outcomes, counts = ray_tuner.resume_tuner(experiment_dir=str(ray_dir), **common)
                else:  # a new search, an extension (its searcher continues from the previous experiment's)
                    if manifest.extensions:
                        common["settings"] = replace(settings, num_samples=int(manifest.extensions[-1][1]))
                        common["searcher_state"] = str(ray_dirs[-2])
                        common.setdefault("constraints", constraints)
                    outcomes, counts = ray_tuner.run_tuner(space=sf.space, metrics=names, modes=modes,
                                                           storage_path=str(ray_dir.parent),
                                                           name=ray_dir.name,
                                                           max_epochs=max_epochs(sf, objective), **common)
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
    return SearchResult(search_id=manifest.search_id, parent_run_id=parent, tracking_uri=tracker.uri,
                        experiment=sf.name, objectives=names, modes=modes, trials=rows, front=front, hypervolume=hv,
                        reference_point=tuple(ref.tolist()), wall_seconds=wall, output_dir=manifest.output_dir,
                        failed=sum(1 for o in outcomes if o.error), search_dir=str(search_dir),
                        columns=objective.front_columns, summary_metrics=objective.summary_metrics,
                        experiment_id=tracker.experiment_id, optuna_storage=mirror.storage,
                        optuna_study=mirror.study_name,
                        extra={**counts, "orphaned": orphans, "early_stopped": sum(1 for o in outcomes if o.early_stopped),
                               "infeasible": sink.front.infeasible_count(),
                               **({"warm_start": warm.describe()} if warm else {}),
                               "epochs_trained": epochs,
                               "tracking_retries": outbox.retries})


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


def _warm_up(uri: str) -> None:
    """:meth:`Tracker.warm_up` on a thread that never takes SIGTERM (the main thread handles it)."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    Tracker.warm_up(uri)


def run_search(sf: SpaceFile, *, overrides: Mapping[str, Any] | None = None, output_dir: str | Path = DEFAULT_OUTPUT,
               tracking_uri: str | None = None, address: str | None = None,
               progress: str | None = None, optuna_storage: str | None = None,
               warm_start: str | None = None, trust_dir: bool = False) -> SearchResult:
    """Validate ``sf``, run the search, log everything, return the front.

    ``warm_start``: an earlier search (its search dir, or its parent run id in this search's
    store) whose finished trials are told to the searcher first (:mod:`~gatesearch.search.warm_start`);
    a search dir others could write is refused unless ``trust_dir`` (:mod:`~gatesearch.search.dir_guard`).

    Files are written owner-only (``GATESEARCH_UMASK`` to share with a group). A URL's password is
    used, never stored (:mod:`~gatesearch.search.redact`).

    ``progress``: show the search live in the terminal (``"auto"``: a rich panel on a tty, plain
    lines otherwise; ``"live"``, ``"plain"``), or nothing (None, the default for the API).

    The search dir (``<output_dir>/ray/<name>-<id>``) holds Ray's experiment state and a
    manifest, so an interrupted search can be finished with :func:`resume_search`.
    """
    objective, settings = validate_space_file(sf)
    settings = settings.override(**(overrides or {}))
    if not any(not isinstance(p, Fixed) for p in sf.space.params.values()):
        # nothing to search: one fixed configuration is a search of size 1
        if settings.num_samples != 1:
            logging.getLogger(__name__).warning("%s: no searched parameter, running the fixed configuration once "
                                                "(num_samples %d -> 1)", sf.path, settings.num_samples)
        settings = settings.override(num_samples=1, searcher="random")
    out = Path(output_dir).expanduser().resolve()
    uri = tracking_uri or default_tracking_uri(out)
    redact.remember_urls([uri, optuna_storage])
    umask()  # a bad GATESEARCH_UMASK fails before anything starts
    # Services first: nothing (no folder, no MLflow run) is written unless both answer.
    check_tracking_uri(uri)
    if optuna_storage:  # e.g. a team's PostgreSQL database (default: optuna.db in the output folder)
        check_optuna_storage(optuna_storage)
    earlier = None if warm_start is None else load_warm_start(warm_start, space=sf.space, fixed=sf.fixed,
                                                              objective=objective, tracking_uri=uri, trust=trust_dir)
    if earlier is not None and progress is not None:  # the CLI: say what was read, before Ray starts
        print(earlier.describe(), flush=True)
    # MLflow's store modules import while Ray starts (its start-up mostly waits on subprocesses)
    warm = threading.Thread(target=_warm_up, args=(uri,), name="gatesearch-warm-up", daemon=True)
    warm.start()
    with private_files():  # Ray's processes start with it too
        ray_tuner.ensure_ray(address=address)
    _check_resources(sf, settings)
    warm.join()
    with private_files():
        created = _make_folder(out)
        use = OutputFolderUse(out).acquire()
        lock = None
        try:
            try:
                search_id, parent, search_dir, manifest, tracker, lock = _start(sf, objective, settings, out, uri,
                                                                                address, optuna_storage, earlier)
            except BaseException:
                if created:  # nothing half-written, unless another search uses the folder by now
                    use.remove_if_unused()
                raise
            return _drive(tracker=tracker, parent=parent, manifest=manifest, sf=sf, objective=objective,
                          settings=settings, search_dir=search_dir, resume=False, progress=progress, warm=earlier)
        finally:
            if lock is not None:
                lock.release()
            use.release()


def _make_folder(out: Path) -> bool:
    """Create the output folder (owner-only: the umask); whether this process created it, decided
    atomically (two searches started into one new folder: one of them created it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        out.mkdir()
        return True
    except FileExistsError:
        if not out.is_dir():
            raise ValueError(f"{out}: exists and is not a folder; pass another --output-dir") from None
        return False


def _check_resources(sf: SpaceFile, settings: SearchSettings) -> None:
    """Fail before anything is written when a trial could never start: ``search:``'s resources, or
    every amount ``resources:`` can ask for (naming a configuration that asks for it)."""
    resources = from_space_file(sf, settings.cpus_per_trial, settings.gpus_per_trial)
    if resources is None:
        ray_tuner.check_resources(settings.cpus_per_trial, settings.gpus_per_trial)
        return
    for (cpus, gpus), config in requirements(resources, sf).items():
        ray_tuner.check_resources(cpus, gpus, which=f" (resources: for {config})",
                                  fix="lower that row of `resources:` (or what your function returns)")


def _start(sf: SpaceFile, objective: Objective, settings: SearchSettings, out: Path, uri: str,
           address: str | None, optuna: str | None = None, warm: WarmStart | None = None):
    """Create the parent run, the search dir (locked: :class:`~gatesearch.search.dir_guard.SearchDirLock`),
    its manifest and space copy (and the link to the search ``warm`` starts from). What it made is
    removed if it fails half-way (never what it did not make)."""
    made: dict[str, Any] = {}
    try:
        return _start_steps(sf, objective, settings, out, uri, address, optuna, warm, made)
    except BaseException:
        if "lock" in made:
            made["lock"].release()
        if "search_dir" in made:
            shutil.rmtree(made["search_dir"], ignore_errors=True)
        if "parent" in made:
            try:
                made["tracker"].delete_run(made["parent"])
            except Exception:  # noqa: BLE001 - the store that just failed may fail again; the run stays
                pass
        raise


def _start_steps(sf: SpaceFile, objective: Objective, settings: SearchSettings, out: Path, uri: str,
                 address: str | None, optuna: str | None, warm: WarmStart | None, made: dict[str, Any]):
    names = tuple(m.name for m in objective.objectives)
    modes = tuple(m.mode for m in objective.objectives)
    search_id = uuid.uuid4().hex[:12]
    tracker = made["tracker"] = _open_tracker(uri, sf.name, out)
    user_ref = settings.reference_for(names)
    parent = tracker.start_search(search_id, f"{sf.name}-{search_id[:6]}", {
        **{k: v for k, v in asdict(settings).items() if k != "reference_point"},  # every search setting
        # the hypervolume reference point, in the objectives' order: the user's, fixed now, or
        # inferred from the first front (logged then, in the same format, by the sink)
        **({"reference_point": json.dumps(user_ref), "reference_point_source": "user"} if user_ref else {}),
        **({"constraints": constraints_of(sf, objective).to_json()} if sf.constraints else {}),
        "objective": objective.name, "space_file": sf.path,
        "objectives": ",".join(f"{n}:{m}" for n, m in zip(names, modes)),
        **({"warm_start_trials": len(warm.known), "warm_start_skipped": sum(warm.skipped.values())} if warm else {}),
        **{f"fixed.{k}": v for k, v in sf.fixed.items()}},
        tags={TAG_FROM: warm.parent_run_id, TAG_FROM_URI: redact.without_password(warm.tracking_uri)} if warm else None)
    made["parent"] = parent
    search_dir = out / "ray" / f"{sf.name}-{search_id}"
    (out / "ray").mkdir(exist_ok=True)
    search_dir.mkdir()
    made["search_dir"] = search_dir
    lock = made["lock"] = SearchDirLock(search_dir).acquire()
    (search_dir / SPACE_COPY).write_text(sf.text, encoding="utf-8")
    tracker.log_text(parent, sf.text, "space.yaml")
    manifest = Manifest(search_id=search_id, parent_run_id=parent, tracking_uri=uri, experiment=sf.name,
                        objective=sf.objective, space_file=sf.path, settings=asdict(settings), output_dir=str(out),
                        address=address, optuna_storage=optuna)
    manifest.write(search_dir)
    tracker.set_tags(parent, {"gatesearch.search_dir": str(search_dir)})
    return search_id, parent, search_dir, manifest, tracker, lock


def resume_search(path: str | Path, *, address: str | None = None, tracking_uri: str | None = None,
                  progress: str | None = None, optuna_storage: str | None = None,
                  trust_dir: bool = False) -> SearchResult:
    """Finish an interrupted search: same Ray experiment (trials, searcher state), same MLflow
    parent run, no duplicate child runs. ``path`` is the search dir (or an output dir holding
    exactly one unfinished search); ``address``/``tracking_uri`` override the recorded ones (used,
    never stored with their password). A search dir others could write is refused unless
    ``trust_dir``; one another driver holds is refused at once
    (:mod:`~gatesearch.search.dir_guard`)."""
    search_dir = find_search_dir(path)
    manifest = Manifest.read(search_dir)
    if manifest.status == "finished":
        raise ValueError(f"{search_dir}: this search already finished; nothing to resume (`gatesearch extend "
                         f"{search_dir} --num-samples N` runs N more trials)")
    with _guarded(search_dir, manifest, trust_dir, "resume"):
        manifest, sf, objective, settings, tracker, parent = _reopen(search_dir, manifest, address, tracking_uri,
                                                                     optuna_storage)
        tags = tracker.tags(parent)
        tracker.set_tags(parent, {"gatesearch.resumes": int(tags.get("gatesearch.resumes", "0")) + 1})
        return _drive(tracker=tracker, parent=parent, manifest=manifest, sf=sf, objective=objective,
                      settings=settings, search_dir=search_dir, resume=True, progress=progress)


@contextmanager
def _guarded(search_dir: Path, manifest: Manifest, trust: bool, what: str):
    """Trusted, locked, owner-only files: what a driver of an existing search dir holds (see
    :mod:`~gatesearch.search.dir_guard`)."""
    redact.remember_urls([manifest.tracking_uri, manifest.optuna_storage])
    check_trusted(search_dir, also=tuple(manifest.ray_dirs(search_dir)[1:]), trust=trust, what=what)
    umask()
    with SearchDirLock(search_dir), private_files():
        out = Path(manifest.output_dir)
        use = OutputFolderUse(out).acquire() if out.is_dir() else None
        try:
            yield
        finally:
            if use is not None:
                use.release()


def _reopen(search_dir: Path, manifest: Manifest, address: str | None, tracking_uri: str | None,
            optuna_storage: str | None):
    """A recorded search, ready to continue: its manifest (with the overrides), space file (its own
    copy), objective, settings, tracker and parent run; the services checked, Ray started."""
    manifest = replace(manifest, address=address or manifest.address, tracking_uri=tracking_uri or manifest.tracking_uri,
                       optuna_storage=optuna_storage or manifest.optuna_storage)
    space_path = search_dir / SPACE_COPY
    try:
        sf = parse_space_file(space_path.read_text(encoding="utf-8"), manifest.space_file)
    except OSError as e:
        raise ValueError(f"{space_path}: missing copy of the space file ({e})") from e
    objective, _ = validate_space_file(sf)
    settings = SearchSettings(**manifest.settings)
    check_tracking_uri(manifest.tracking_uri)
    if manifest.optuna_storage:
        check_optuna_storage(manifest.optuna_storage)
    ray_tuner.ensure_ray(address=manifest.address)
    tracker = _open_tracker(manifest.tracking_uri, manifest.experiment, Path(manifest.output_dir))
    parent = tracker.start_search(manifest.search_id, "", {})  # finds the original parent run
    if parent != manifest.parent_run_id:
        raise ValueError(f"{redact.shown(manifest.tracking_uri)}: parent run {manifest.parent_run_id} of search "
                         f"{manifest.search_id} not found; pass --tracking-uri of the original store")
    return manifest, sf, objective, settings, tracker, parent


def finished_search_dir(path: str | Path) -> Path:
    """``path`` itself if it holds a manifest; else the one search under ``path/ray`` (an output
    dir). It must have finished (an interrupted one is finished with ``gatesearch resume``)."""
    p = Path(path).expanduser().resolve()
    p = extension_base(p) or p  # an extension's Ray experiment: its search dir
    if (p / MANIFEST).exists():
        found = [p]
    elif p.is_dir():
        found = sorted(m.parent for m in p.glob(f"ray/*/{MANIFEST}"))
    else:
        raise ValueError(f"{p}: no such directory; pass the search directory printed by `gatesearch run`")
    if len(found) != 1:
        raise ValueError(f"{p}: " + (f"{len(found)} searches here; pass one of: " + ", ".join(map(str, found))
                                     if found else f"no gatesearch search here (no {MANIFEST})"))
    status = Manifest.read(found[0]).status
    if status != "finished":
        raise ValueError(f"{found[0]}: this search is {status}, not finished; finish it first with "
                         f"`gatesearch resume {found[0]}`, then extend it")
    return found[0]


def extend_search(path: str | Path, *, num_samples: int, address: str | None = None,
                  tracking_uri: str | None = None, progress: str | None = None,
                  optuna_storage: str | None = None, trust_dir: bool = False) -> SearchResult:
    """``num_samples`` more trials for a finished search, in the same MLflow parent run: the searcher
    continues from its saved state (everything it was told, the deduplication memory; MO-ASHA from
    its rungs) in a new Ray experiment beside the search dir (recorded in the manifest, so an
    interrupted extension is finished with :func:`resume_search`); the front and the hypervolume
    history continue. ``path``: the search dir (or an output dir holding one search); trusted and
    locked as by :func:`resume_search`."""
    SearchSettings().override(num_samples=num_samples)  # the same bounds as --num-samples of run
    search_dir = finished_search_dir(path)
    manifest = Manifest.read(search_dir)
    if not ray_tuner.can_resume(str(manifest.ray_dirs(search_dir)[-1])):
        raise ValueError(f"{search_dir}: Ray's experiment state is missing, so the searcher cannot continue; "
                         f"start a new search with --warm-start {search_dir}")
    with _guarded(search_dir, manifest, trust_dir, "extend"):
        manifest = Manifest.read(search_dir)  # another driver may have extended it before we held the lock
        if manifest.status != "finished":
            raise ValueError(f"{search_dir}: this search is {manifest.status}, not finished; finish it first with "
                             f"`gatesearch resume {search_dir}`, then extend it")
        manifest, sf, objective, settings, tracker, parent = _reopen(search_dir, manifest, address, tracking_uri,
                                                                     optuna_storage)
        _check_resources(sf, settings)
        k = len(manifest.extensions) + 1
        settings = settings.override(num_samples=settings.num_samples + num_samples)
        manifest = replace(manifest, extensions=(*manifest.extensions, (f"{search_dir.name}.extend{k}", num_samples)),
                           settings=asdict(settings), status="running")
        manifest.write(search_dir)
        tracker.log_batch(parent, params={f"extend{k}_num_samples": num_samples}, tags={"gatesearch.extensions": k})
        return _drive(tracker=tracker, parent=parent, manifest=manifest, sf=sf, objective=objective,
                      settings=settings, search_dir=search_dir, resume=True, progress=progress)
