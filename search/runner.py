"""One search, end to end: validate, run on Ray, log to MLflow, compute and log the front."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gatesearch.objectives import METRICS, Objective
from gatesearch.search import tuner as ray_tuner
from gatesearch.search.figure import pareto_figure
from gatesearch.search.outbox import BufferedSink, Outbox
from gatesearch.search.pareto import hypervolume, pareto_ranks, reference_point
from gatesearch.search.settings import SearchSettings
from gatesearch.search.tracking import TAG_ERROR, TAG_RANK, Tracker, TrialRecord
from gatesearch.search.validate import validate_space_file
from gatesearch.spaces import SpaceFile, parse_space_file

DEFAULT_OUTPUT = "gatesearch-runs"
PLACEMENT_KEYS = ("device", "gpu_ids", "node_ip", "node_id")
TAG_STOPPED = "gatesearch.early_stopped_at_epoch"
TAG_RETRIES = "gatesearch.retries"


def default_tracking_uri(output_dir: str | Path) -> str:
    """``sqlite:///<abs output dir>/mlflow.db`` (MLflow 3 has no file store)."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


@dataclass(frozen=True)
class SearchResult:
    """What a finished search left behind."""

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


class MlflowTrialSink:
    """Turns Ray trial events into nested MLflow child runs (driver side)."""

    def __init__(self, tracker: Tracker, parent_id: str, search_id: str, objective: Objective,
                 fixed: Mapping[str, Any], front_every: int = 0, title: str = ""):
        self.tracker, self.parent_id, self.search_id = tracker, parent_id, search_id
        self.objective, self.fixed = objective, dict(fixed)
        self.names = tuple(m.name for m in objective.objectives)
        self.modes = tuple(m.mode for m in objective.objectives)
        self.front_every, self.title = front_every, title
        self.finished = 0
        self.reference: np.ndarray | None = None
        self.runs: dict[str, str] = {}
        self.placed: set[str] = set()
        self.points: dict[str, list[dict]] = {}  # trial -> operating points (one trial, many front points)

    def _run(self, trial_id: str, config: Mapping[str, Any] | None = None) -> str:
        if trial_id not in self.runs:
            cfg = {**self.fixed, **(config or {})}
            try:
                full = self.objective.resolve(cfg)
                params = {**full, **self.objective.derived(full)}
            except ValueError:
                params = cfg
            name = f"trial-{trial_id.rsplit('_', 1)[-1]}"
            self.runs[trial_id] = self.tracker.trial_run(self.parent_id, self.search_id, trial_id, name, params)
        return self.runs[trial_id]

    def on_start(self, trial_id: str, config: Mapping[str, Any]) -> None:
        self._run(trial_id, config)

    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        run = self._run(trial_id, result.get("config"))
        metrics = {k: v for k, v in result.items() if k in METRICS or k.startswith("exit_fraction_")}
        self.tracker.log_metrics(run, metrics, step=int(result.get("epoch", result.get("training_iteration", 0))))
        if trial_id not in self.placed:  # where the trial ran: device, Ray GPU ids, node
            self.placed.add(trial_id)
            self.tracker.set_tags(run, {f"gatesearch.{k}": result[k] for k in PLACEMENT_KEYS if k in result})

    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None:
        run = self._run(trial_id, result.get("config"))
        if result.get("operating_points"):  # e.g. the threshold baseline's budget sweep
            self.points[trial_id] = list(result["operating_points"])
            self.tracker.log_dict(run, {"operating_points": self.points[trial_id]}, "operating_points.json")
        if ray_tuner.is_partial(result):  # stopped early by the scheduler: lower fidelity, not on the front
            self.tracker.set_tags(run, {TAG_STOPPED: int(result.get("epoch", 0))})
            self.tracker.end_run(run, "KILLED")
        else:
            self.tracker.end_run(run, "FINISHED")
        self.finished += 1
        if self.front_every and self.finished % self.front_every == 0:
            self.log_front()

    def log_front(self) -> tuple[list[dict], list[dict], float, np.ndarray]:
        """Log the front now. The hypervolume reference point is fixed the first time
        (and recorded as the parent's ``reference_point`` param) so the history is comparable."""
        rows, front, hv, ref = log_front(self.tracker, self.parent_id, self.names, self.modes, title=self.title,
                                         ref=self.reference)
        if self.reference is None and rows:
            self.reference = ref
            self.tracker.log_params(self.parent_id, {"reference_point": json.dumps(ref.tolist())})
        if self.points:
            self._log_point_front(ref)
        return rows, front, hv, ref

    def _log_point_front(self, ref: np.ndarray) -> None:
        """The front over every operating point of every trial (not only one point per trial)."""
        flat = [{"trial_id": t, "run_id": self.runs.get(t), **p} for t, pts in self.points.items() for p in pts]
        values = np.array([[p.get(n, np.nan) for n in self.names] for p in flat], dtype=float)
        ranks = pareto_ranks(values, self.modes)
        front = sorted((p for p, r in zip(flat, ranks) if r == 0), key=lambda p: p[self.names[1]])
        self.tracker.log_dict(self.parent_id, {"objectives": list(self.names), "front": front},
                              "operating_points_front.json")
        self.tracker.log_metrics(self.parent_id, {"operating_points_hypervolume": hypervolume(values, self.modes, ref),
                                                  "operating_points": len(flat)}, step=self.finished)

    def on_retry(self, trial_id: str, failures: int) -> None:
        """Ray is retrying the trial after a failure (node death, crash): same child run."""
        self.tracker.set_tags(self._run(trial_id), {TAG_RETRIES: failures})

    def on_error(self, trial_id: str, error: str) -> None:
        run = self._run(trial_id)
        self.tracker.set_tags(run, {TAG_ERROR: error.strip().splitlines()[-1] if error.strip() else "error"})
        self.tracker.log_text(run, error, "error.txt")
        self.tracker.end_run(run, "FAILED")


def _objective_matrix(records: list[TrialRecord], names: tuple[str, ...]) -> np.ndarray:
    return np.array([[r.metrics.get(n, np.nan) for n in names] for r in records], dtype=float).reshape(
        len(records), len(names))


def read_front(tracker: Tracker, parent_id: str, names: tuple[str, ...], modes: tuple[str, ...]):
    """Read-only: the FINISHED children of ``parent_id``, their objective matrix, Pareto
    ranks, one summary row each, and the front rows (sorted by the second objective)."""
    records = [r for r in tracker.children(parent_id) if r.status == "FINISHED"]
    values = _objective_matrix(records, names)
    ranks = pareto_ranks(values, modes) if len(records) else np.zeros(0, int)
    rows = []
    for rec, rank in zip(records, ranks):
        row = {"run_id": rec.run_id, "trial": rec.tags.get("mlflow.runName", rec.trial_id), "pareto_rank": int(rank)}
        row.update({k: rec.params[k] for k in ("gate", "n_experts", "k", "local_search", "n_blocks", "lambda_cost",
                                               "confidence", "lr") if k in rec.params})
        if "k_effective" in rec.params:  # hash routes to 1 expert, softmax to all, whatever k was sampled
            row["k"] = rec.params["k_effective"]
        row.update({k: rec.metrics.get(k) for k in (*names, "test_accuracy", "active_experts")})
        rows.append(row)
    front = sorted([r for r in rows if r["pareto_rank"] == 0], key=lambda r: r[names[1]])
    return records, values, ranks, rows, front


def log_front(tracker: Tracker, parent_id: str, names: tuple[str, ...], modes: tuple[str, ...],
              title: str = "", ref: np.ndarray | None = None) -> tuple[list[dict], list[dict], float, np.ndarray]:
    """Recompute the front from the FINISHED child runs; tag ranks, log table + figure + HV.

    Idempotent: tags are overwritten and artifacts replaced, nothing is duplicated.
    ``ref`` is the hypervolume reference point (default: :func:`reference_point` of the data).
    Returns (all trial rows, front rows, hypervolume, reference point).
    """
    records, values, ranks, rows, front = read_front(tracker, parent_id, names, modes)
    for rec, rank in zip(records, ranks):
        tracker.set_tags(rec.run_id, {TAG_RANK: int(rank)})
    if ref is None:
        ref = reference_point(values, modes) if len(records) else np.zeros(len(names))
    hv = hypervolume(values, modes, ref) if len(records) else 0.0
    tracker.log_dict(parent_id, {"objectives": list(names), "modes": list(modes), "reference_point": ref.tolist(),
                                 "hypervolume": hv, "front": front}, "pareto_front.json")
    buf = io.StringIO()
    if front:
        writer = csv.DictWriter(buf, fieldnames=list(front[0]))
        writer.writeheader()
        writer.writerows(front)
    tracker.log_text(parent_id, buf.getvalue(), "pareto_front.csv")
    tracker.log_dict(parent_id, {"trials": rows}, "trials.json")
    if len(records):
        import matplotlib.pyplot as plt

        fig = pareto_figure(values, ranks == 0, names, modes, labels=[r.get("gate", "") for r in rows], title=title)
        tracker.log_figure(parent_id, fig, "pareto_front.png")
        plt.close(fig)
    tracker.log_metrics(parent_id, {"hypervolume": hv, "front_size": len(front), "finished_trials": len(records)},
                        step=len(records))
    return rows, front, hv, ref


def latest_search(tracker: Tracker) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The most recent parent run of the tracker's experiment and its objectives/modes."""
    parents = tracker.searches()
    if not parents:
        raise ValueError(f"experiment {tracker.experiment!r} has no gatesearch search runs")
    run_id, params = parents[0]
    pairs = [p.split(":") for p in params.get("objectives", "").split(",") if ":" in p]
    if not pairs:
        raise ValueError(f"search run {run_id} does not record its objectives")
    return run_id, tuple(n for n, _ in pairs), tuple(m for _, m in pairs)


def max_epochs(sf: SpaceFile, objective: Objective) -> int:
    """The full per-trial budget in epochs: fixed, the searched maximum, or the default."""
    if "epochs" in sf.fixed:
        return int(sf.fixed["epochs"])
    p = sf.space.params.get("epochs")
    if p is not None:
        lo, hi = p.bounds()
        if hi is not None:
            return int(hi)
    return int(objective.defaults.get("epochs", 1))


MANIFEST = "gatesearch.json"
SPACE_COPY = "space.yaml"
TAG_ORPHANED = "gatesearch.orphaned"


@dataclass(frozen=True)
class Manifest:
    """What ``gatesearch resume`` needs to finish a search, written into its search dir
    (Ray's experiment dir) before the first trial starts, next to a copy of the space file."""

    search_id: str
    parent_run_id: str
    tracking_uri: str
    experiment: str
    objective: str
    space_file: str
    settings: Mapping[str, Any]
    output_dir: str
    address: str | None = None
    status: str = "running"

    def write(self, search_dir: Path) -> None:
        tmp = search_dir / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        tmp.replace(search_dir / MANIFEST)  # atomic: a reader never sees half a manifest

    @classmethod
    def read(cls, search_dir: Path) -> "Manifest":
        path = search_dir / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(**raw)
        except (OSError, json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{path}: not a readable gatesearch manifest ({e}); "
                             f"pass the search directory printed by `gatesearch run`") from e


def find_search_dir(path: str | Path) -> Path:
    """``path`` itself if it holds a manifest; else the one unfinished search under
    ``path/ray`` (an output dir). Errors list the candidates."""
    p = Path(path).expanduser().resolve()
    if (p / MANIFEST).exists():
        return p
    if not p.exists():
        raise ValueError(f"{p}: no such directory; pass the search directory printed by `gatesearch run`")
    found = sorted((d for d in [*p.glob(f"*/{MANIFEST}"), *p.glob(f"ray/*/{MANIFEST}")]),
                   key=lambda m: m.stat().st_mtime)
    open_ = [m.parent for m in found if Manifest.read(m.parent).status != "finished"]
    if len(open_) == 1:
        return open_[0]
    if not open_:
        raise ValueError(f"{p}: no unfinished gatesearch search here ({len(found)} finished); "
                         f"pass a search directory (it contains {MANIFEST})")
    raise ValueError(f"{p}: {len(open_)} unfinished searches; pass one of: " + ", ".join(str(d) for d in open_))


def _open_tracker(uri: str, experiment: str, out: Path) -> Tracker:
    # A local SQLite store keeps artifacts next to it; a tracking server decides for itself.
    location = (out / "artifacts").as_uri() if uri.startswith("sqlite:") else None
    return Tracker(uri, experiment, artifact_location=location)


def _drive(*, tracker: Tracker, parent: str, manifest: Manifest, sf: SpaceFile, objective: Objective,
           settings: SearchSettings, search_dir: Path, resume: bool) -> SearchResult:
    """Run (or resume) the Tuner with a buffered MLflow sink; log the front; close the parent."""
    names = tuple(m.name for m in objective.objectives)
    modes = tuple(m.mode for m in objective.objectives)
    sink = MlflowTrialSink(tracker, parent, manifest.search_id, objective, sf.fixed,
                           front_every=settings.front_every, title=sf.name)
    if resume:
        ref = tracker.params(parent).get("reference_point")
        sink.reference = np.array(json.loads(ref), dtype=float) if ref else None
        sink.finished = sum(1 for c in tracker.children(parent) if c.status in ("FINISHED", "KILLED"))
    outbox = Outbox(sink, Tracker.is_transient, settings.tracking_timeout_s, describe=f"MLflow at {tracker.uri}")
    t0 = time.time()
    status = "FAILED"
    try:
        ray_tuner.ensure_ray(address=manifest.address)
        common = dict(objective_name=sf.objective, fixed=sf.fixed, settings=settings, sink=BufferedSink(outbox),
                      should_stop=lambda: outbox.failed)
        try:
            if resume and ray_tuner.can_resume(str(search_dir)):
                outcomes, counts = ray_tuner.resume_tuner(experiment_dir=str(search_dir), **common)
            else:
                outcomes, counts = ray_tuner.run_tuner(space=sf.space, metrics=names, modes=modes,
                                                       storage_path=str(search_dir.parent), name=search_dir.name,
                                                       max_epochs=max_epochs(sf, objective), **common)
        except Exception:
            outbox.raise_if_failed()  # the root cause, if tracking failed first
            raise
        outbox.flush()  # raises TrackingUnavailable if the store never came back
        orphans = backfilled = 0
        if resume:
            orphans = _retire_orphans(tracker, parent, {o.trial_id for o in outcomes})
            backfilled = _backfill(sink, tracker, parent, outcomes)
        epochs = sum(int(o.metrics.get("epoch", 0)) for o in outcomes)
        tracker.log_metrics(parent, {**counts, "orphaned_trials": orphans, "backfilled_trials": backfilled,
                                     "tracking_retries": outbox.retries,
                                     "tracking_outage_seconds": outbox.outage_seconds,
                                     "epochs_trained": epochs}, step=len(outcomes))
        rows, front, hv, ref = sink.log_front()
        status = "FINISHED"
    finally:
        wall = time.time() - t0
        try:
            tracker.log_metrics(parent, {"wall_seconds": wall}, step=0)
            tracker.end_run(parent, status)
        except Exception:  # noqa: BLE001 - the store may be the thing that failed; keep the original error
            if status == "FINISHED":
                raise
        replace(manifest, status="finished" if status == "FINISHED" else "failed").write(search_dir)
    return SearchResult(search_id=manifest.search_id, parent_run_id=parent, tracking_uri=tracker.uri,
                        experiment=sf.name, objectives=names, modes=modes, trials=rows, front=front, hypervolume=hv,
                        reference_point=tuple(ref.tolist()), wall_seconds=wall, output_dir=manifest.output_dir,
                        failed=sum(1 for o in outcomes if o.error), search_dir=str(search_dir),
                        extra={**counts, "orphaned": orphans, "early_stopped": sum(1 for o in outcomes if o.early_stopped),
                               "epochs_trained": epochs,
                               "tracking_retries": outbox.retries})


def _backfill(sink: MlflowTrialSink, tracker: Tracker, parent: str, outcomes) -> int:
    """Write to MLflow what Ray recorded but the store never received (events dropped while it
    was unreachable before a search stopped): each trial's per-epoch results from Ray's own
    records, then its final state. Trials whose child run is already terminal are left alone."""
    done = {c.trial_id for c in tracker.children(parent) if c.status in ("FINISHED", "FAILED", "KILLED")}
    n = 0
    for o in outcomes:
        if o.trial_id in done:
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


def _retire_orphans(tracker: Tracker, parent: str, known: set[str]) -> int:
    """Child runs of trials Ray's last snapshot never recorded (started after it, then lost with
    the driver): the resumed searcher proposed replacements, so these are marked KILLED and
    tagged, keeping exactly one finished child per trial of the budget."""
    n = 0
    for child in tracker.children(parent):
        if child.trial_id not in known and child.status in ("RUNNING", "FINISHED"):
            tracker.set_tags(child.run_id, {TAG_ORPHANED: "lost with the driver before Ray's experiment snapshot; "
                                                          "its slot was re-proposed on resume"})
            tracker.end_run(child.run_id, "KILLED")
            n += 1
    return n


def run_search(sf: SpaceFile, *, overrides: Mapping[str, Any] | None = None, output_dir: str | Path = DEFAULT_OUTPUT,
               tracking_uri: str | None = None, address: str | None = None) -> SearchResult:
    """Validate ``sf``, run the search, log everything, return the front.

    The search dir (``<output_dir>/ray/<name>-<id>``) holds Ray's experiment state and a
    manifest, so an interrupted search can be finished with :func:`resume_search`.
    """
    objective, settings = validate_space_file(sf)
    settings = settings.override(**(overrides or {}))
    out = Path(output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or default_tracking_uri(out)
    names = tuple(m.name for m in objective.objectives)
    modes = tuple(m.mode for m in objective.objectives)
    search_id = uuid.uuid4().hex[:12]
    tracker = _open_tracker(uri, sf.name, out)
    parent = tracker.start_search(search_id, f"{sf.name}-{search_id[:6]}", {
        "objective": objective.name, "searcher": settings.searcher, "num_samples": settings.num_samples,
        "max_concurrent": settings.max_concurrent, "seed": settings.seed, "space_file": sf.path,
        "scheduler": settings.scheduler, "max_failures": settings.max_failures,
        "cpus_per_trial": settings.cpus_per_trial, "gpus_per_trial": settings.gpus_per_trial,
        "objectives": ",".join(f"{n}:{m}" for n, m in zip(names, modes)),
        **{f"fixed.{k}": v for k, v in sf.fixed.items()}})
    search_dir = out / "ray" / f"{sf.name}-{search_id}"
    search_dir.mkdir(parents=True, exist_ok=True)
    (search_dir / SPACE_COPY).write_text(sf.text, encoding="utf-8")
    tracker.log_text(parent, sf.text, "space.yaml")
    manifest = Manifest(search_id=search_id, parent_run_id=parent, tracking_uri=uri, experiment=sf.name,
                        objective=sf.objective, space_file=sf.path, settings=asdict(settings), output_dir=str(out),
                        address=address)
    manifest.write(search_dir)
    tracker.set_tags(parent, {"gatesearch.search_dir": str(search_dir)})
    return _drive(tracker=tracker, parent=parent, manifest=manifest, sf=sf, objective=objective, settings=settings,
                  search_dir=search_dir, resume=False)


def resume_search(path: str | Path, *, address: str | None = None, tracking_uri: str | None = None) -> SearchResult:
    """Finish an interrupted search: same Ray experiment (trials, searcher state), same MLflow
    parent run, no duplicate child runs. ``path`` is the search dir (or an output dir holding
    exactly one unfinished search); ``address``/``tracking_uri`` override the recorded ones."""
    search_dir = find_search_dir(path)
    manifest = Manifest.read(search_dir)
    if manifest.status == "finished":
        raise ValueError(f"{search_dir}: this search already finished; nothing to resume")
    manifest = replace(manifest, address=address or manifest.address, tracking_uri=tracking_uri or manifest.tracking_uri)
    space_path = search_dir / SPACE_COPY
    try:
        sf = parse_space_file(space_path.read_text(encoding="utf-8"), manifest.space_file)
    except OSError as e:
        raise ValueError(f"{space_path}: missing copy of the space file ({e})") from e
    objective, _ = validate_space_file(sf)
    settings = SearchSettings(**manifest.settings)
    tracker = _open_tracker(manifest.tracking_uri, manifest.experiment, Path(manifest.output_dir))
    parent = tracker.start_search(manifest.search_id, "", {})  # finds the original parent run
    if parent != manifest.parent_run_id:
        raise ValueError(f"{manifest.tracking_uri}: parent run {manifest.parent_run_id} of search "
                         f"{manifest.search_id} not found; pass --tracking-uri of the original store")
    tags = tracker.tags(parent)
    tracker.set_tags(parent, {"gatesearch.resumes": int(tags.get("gatesearch.resumes", "0")) + 1})
    return _drive(tracker=tracker, parent=parent, manifest=manifest, sf=sf, objective=objective, settings=settings,
                  search_dir=search_dir, resume=True)
