"""The public entries of a search: :func:`run_search`, :func:`resume_search` and :func:`extend_search`.

Each checks what it is given (the space file, services, the search dir) before anything is written,
opens the output folder and the stores, then hands over to :func:`~gatesearch.search.lifecycle.drive.drive`."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping

from gatesearch.search import ray as ray_tuner
from gatesearch.search.config.plan import SearchPlan, plan_search
from gatesearch.search.config.resources import requirements
from gatesearch.search.config.settings import SearchSettings
from gatesearch.search.lifecycle.drive import TAG_ORPHANED, _open_tracker, _restore, drive, study_name  # noqa: F401 - TAG_ORPHANED, _restore: re-exported
from gatesearch.search.lifecycle.manifest import MANIFEST, SPACE_COPY, Manifest, extension_base, find_search_dir
from gatesearch.search.lifecycle.result import SearchResult, latest_search  # noqa: F401 - re-exported: the API's names
from gatesearch.search.lifecycle.warm_start import TAG_FROM, TAG_FROM_URI, WarmStart, load_warm_start
from gatesearch.search.searchers.registry import auto_searcher
from gatesearch.search.system import redact
from gatesearch.search.system.dir_guard import OutputFolderUse, SearchDirLock, check_trusted, private_files, umask
from gatesearch.search.system.services import check_optuna_storage, check_tracking_uri
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import SpaceFile, parse_space_file

DEFAULT_OUTPUT = "gatesearch-runs"


def default_tracking_uri(output_dir: str | Path) -> str:
    """``sqlite:///<abs output dir>/mlflow.db`` (MLflow 3 has no file store)."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


def _warm_up(uri: str) -> None:
    """:meth:`Tracker.warm_up` on a thread that never takes SIGTERM (the main thread handles it)."""
    import signal

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    Tracker.warm_up(uri)


def run_search(sf: SpaceFile | SearchPlan, *, overrides: Mapping[str, Any] | None = None, output_dir: str | Path = DEFAULT_OUTPUT,
               tracking_uri: str | None = None, address: str | None = None,
               progress: str | None = None, optuna_storage: str | None = None,
               warm_start: str | None = None, trust_dir: bool = False) -> SearchResult:
    """Validate ``sf`` (or take its :class:`~gatesearch.search.config.plan.SearchPlan`, checked
    already), run the search, log everything, return the front. ``overrides``: ``search:`` settings.

    ``warm_start``: an earlier search (its search dir, or its parent run id in this search's
    store) whose finished trials are told to the searcher first (:mod:`~gatesearch.search.lifecycle.warm_start`);
    a search dir others could write is refused unless ``trust_dir`` (:mod:`~gatesearch.search.system.dir_guard`).

    Files are written owner-only (``GATESEARCH_UMASK`` to share with a group). A URL's password is
    used, never stored (:mod:`~gatesearch.search.system.redact`).

    ``progress``: show the search live in the terminal (``"auto"``: a rich panel on a tty, plain
    lines otherwise; ``"live"``, ``"plain"``), or nothing (None, the default for the API).

    The search dir (``<output_dir>/ray/<name>-<id>``) holds Ray's experiment state and a
    manifest, so an interrupted search can be finished with :func:`resume_search`.
    """
    plan = sf.override(**(overrides or {})) if isinstance(sf, SearchPlan) else plan_search(sf, overrides)
    sf, objective = plan.sf, plan.objective
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
    _check_resources(plan)
    warm.join()
    with private_files():
        created = _make_folder(out)
        use = OutputFolderUse(out).acquire()
        lock = None
        try:
            try:
                search_id, parent, search_dir, manifest, tracker, lock = _start(plan, out, uri, address,
                                                                                optuna_storage, earlier)
            except BaseException:
                if created:  # nothing half-written, unless another search uses the folder by now
                    use.remove_if_unused()
                raise
            return drive(tracker=tracker, parent=parent, manifest=manifest, plan=plan, search_dir=search_dir,
                         resume=False, progress=progress, warm=earlier)
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


def _check_resources(plan: SearchPlan) -> None:
    """Fail before anything is written when a trial could never start: ``search:``'s resources, or
    every amount ``resources:`` can ask for (naming a configuration that asks for it)."""
    if plan.resources is None:
        ray_tuner.check_resources(plan.settings.cpus_per_trial, plan.settings.gpus_per_trial)
        return
    for (cpus, gpus), config in requirements(plan.resources, plan.sf).items():
        ray_tuner.check_resources(cpus, gpus, which=f" (resources: for {config})",
                                  fix="lower that row of `resources:` (or what your function returns)")


def _start(plan: SearchPlan, out: Path, uri: str, address: str | None, optuna: str | None = None,
           warm: WarmStart | None = None):
    """Create the parent run, the search dir (locked: :class:`~gatesearch.search.system.dir_guard.SearchDirLock`),
    its manifest and space copy (and the link to the search ``warm`` starts from). What it made is
    removed if it fails half-way (never what it did not make)."""
    made: dict[str, Any] = {}
    try:
        return _start_steps(plan, out, uri, address, optuna, warm, made)
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


def _start_steps(plan: SearchPlan, out: Path, uri: str, address: str | None, optuna: str | None,
                 warm: WarmStart | None, made: dict[str, Any]):
    sf, objective, settings = plan.sf, plan.objective, plan.settings
    names, modes = plan.names, plan.modes
    search_id = uuid.uuid4().hex[:12]
    tracker = made["tracker"] = _open_tracker(uri, sf.name, out)
    user_ref = settings.reference_for(names)
    parent = tracker.start_search(search_id, f"{sf.name}-{search_id[:6]}", {
        **{k: v for k, v in asdict(settings).items() if k != "reference_point"},  # every search setting
        **({"searcher_auto": auto_searcher(sf.space)} if settings.searcher == "auto" else {}),  # what auto runs
        # the hypervolume reference point, in the objectives' order: the user's, fixed now, or
        # inferred from the first front (logged then, in the same format, by the sink)
        **({"reference_point": json.dumps(user_ref), "reference_point_source": "user"} if user_ref else {}),
        **({"constraints": plan.constraints.to_json()} if sf.constraints else {}),
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
    (:mod:`~gatesearch.search.system.dir_guard`)."""
    search_dir = find_search_dir(path)
    manifest = Manifest.read(search_dir)
    if manifest.status == "finished":
        raise ValueError(f"{search_dir}: this search already finished; nothing to resume (`gatesearch extend "
                         f"{search_dir} --num-samples N` runs N more trials)")
    with _guarded(search_dir, manifest, trust_dir, "resume"):
        manifest, plan, tracker, parent = _reopen(search_dir, manifest, address, tracking_uri, optuna_storage)
        tags = tracker.tags(parent)
        tracker.set_tags(parent, {"gatesearch.resumes": int(tags.get("gatesearch.resumes", "0")) + 1})
        return drive(tracker=tracker, parent=parent, manifest=manifest, plan=plan, search_dir=search_dir,
                     resume=True, progress=progress)


@contextmanager
def _guarded(search_dir: Path, manifest: Manifest, trust: bool, what: str):
    """Trusted, locked, owner-only files: what a driver of an existing search dir holds (see
    :mod:`~gatesearch.search.system.dir_guard`)."""
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
    """A recorded search, ready to continue: its manifest (with the overrides), plan (from its own
    copy of the space file and its recorded settings), tracker and parent run; the services checked,
    Ray started."""
    manifest = replace(manifest, address=address or manifest.address, tracking_uri=tracking_uri or manifest.tracking_uri,
                       optuna_storage=optuna_storage or manifest.optuna_storage)
    space_path = search_dir / SPACE_COPY
    try:
        sf = parse_space_file(space_path.read_text(encoding="utf-8"), manifest.space_file)
    except OSError as e:
        raise ValueError(f"{space_path}: missing copy of the space file ({e})") from e
    plan = SearchPlan.recorded(sf, manifest.settings)
    check_tracking_uri(manifest.tracking_uri)
    if manifest.optuna_storage:
        check_optuna_storage(manifest.optuna_storage)
    ray_tuner.ensure_ray(address=manifest.address)
    tracker = _open_tracker(manifest.tracking_uri, manifest.experiment, Path(manifest.output_dir))
    parent = tracker.start_search(manifest.search_id, "", {})  # finds the original parent run
    if parent != manifest.parent_run_id:
        raise ValueError(f"{redact.shown(manifest.tracking_uri)}: parent run {manifest.parent_run_id} of search "
                         f"{manifest.search_id} not found; pass --tracking-uri of the original store")
    return manifest, plan, tracker, parent


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
        manifest, plan, tracker, parent = _reopen(search_dir, manifest, address, tracking_uri, optuna_storage)
        _check_resources(plan)
        k = len(manifest.extensions) + 1
        settings = plan.settings.override(num_samples=plan.settings.num_samples + num_samples)
        plan = plan.with_settings(settings)
        manifest = replace(manifest, extensions=(*manifest.extensions, (f"{search_dir.name}.extend{k}", num_samples)),
                           settings=asdict(settings), status="running")
        manifest.write(search_dir)
        tracker.log_batch(parent, params={f"extend{k}_num_samples": num_samples}, tags={"gatesearch.extensions": k})
        return drive(tracker=tracker, parent=parent, manifest=manifest, plan=plan, search_dir=search_dir,
                     resume=True, progress=progress)
