"""One search, end to end: validate, run on Ray, log to MLflow, compute and log the front."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from objectives import METRICS, Objective
from search import tuner as ray_tuner
from search.figure import pareto_figure
from search.pareto import hypervolume, pareto_ranks, reference_point
from search.settings import SearchSettings
from search.tracking import TAG_ERROR, TAG_RANK, Tracker, TrialRecord
from search.validate import validate_space_file
from spaces import SpaceFile

DEFAULT_OUTPUT = "gatesearch-runs"
PLACEMENT_KEYS = ("device", "gpu_ids", "node_ip")
TAG_STOPPED = "gatesearch.early_stopped_at_epoch"


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
        metrics = {k: v for k, v in result.items() if k in METRICS}
        self.tracker.log_metrics(run, metrics, step=int(result.get("epoch", result.get("training_iteration", 0))))
        if trial_id not in self.placed:  # where the trial ran: device, Ray GPU ids, node
            self.placed.add(trial_id)
            self.tracker.set_tags(run, {f"gatesearch.{k}": result[k] for k in PLACEMENT_KEYS if k in result})

    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None:
        run = self._run(trial_id, result.get("config"))
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
        return rows, front, hv, ref

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
        row.update({k: rec.params[k] for k in ("gate", "n_experts", "k", "local_search", "lr") if k in rec.params})
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


def run_search(sf: SpaceFile, *, overrides: Mapping[str, Any] | None = None, output_dir: str | Path = DEFAULT_OUTPUT,
               tracking_uri: str | None = None, address: str | None = None) -> SearchResult:
    """Validate ``sf``, run the search, log everything, return the front."""
    objective, settings = validate_space_file(sf)
    settings = settings.override(**(overrides or {}))
    out = Path(output_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    uri = tracking_uri or default_tracking_uri(out)
    names = tuple(m.name for m in objective.objectives)
    modes = tuple(m.mode for m in objective.objectives)
    search_id = uuid.uuid4().hex[:12]
    tracker = Tracker(uri, sf.name, artifact_location=(out / "artifacts").as_uri())
    parent = tracker.start_search(search_id, f"{sf.name}-{search_id[:6]}", {
        "objective": objective.name, "searcher": settings.searcher, "num_samples": settings.num_samples,
        "max_concurrent": settings.max_concurrent, "seed": settings.seed, "space_file": sf.path,
        "cpus_per_trial": settings.cpus_per_trial, "gpus_per_trial": settings.gpus_per_trial,
        "objectives": ",".join(f"{n}:{m}" for n, m in zip(names, modes)),
        **{f"fixed.{k}": v for k, v in sf.fixed.items()}})
    try:
        tracker.log_text(parent, Path(sf.path).read_text(encoding="utf-8"), "space.yaml")
    except OSError:
        pass
    sink = MlflowTrialSink(tracker, parent, search_id, objective, sf.fixed, front_every=settings.front_every,
                           title=sf.name)
    t0 = time.time()
    status = "FAILED"
    try:
        ray_tuner.ensure_ray(address=address)
        outcomes, counts = ray_tuner.run_tuner(space=sf.space, objective_name=objective.name, fixed=sf.fixed,
                                               metrics=names, modes=modes, settings=settings,
                                               storage_path=str(out / "ray"), name=f"{sf.name}-{search_id}",
                                               sink=sink, max_epochs=max_epochs(sf, objective))
        tracker.log_metrics(parent, {**counts, "epochs_trained": sum(int(o.metrics.get("epoch", 0))
                                                                      for o in outcomes)}, step=len(outcomes))
        rows, front, hv, ref = sink.log_front()
        status = "FINISHED"
    finally:
        wall = time.time() - t0
        tracker.log_metrics(parent, {"wall_seconds": wall}, step=0)
        tracker.end_run(parent, status)
    return SearchResult(search_id=search_id, parent_run_id=parent, tracking_uri=uri, experiment=sf.name,
                        objectives=names, modes=modes, trials=rows, front=front, hypervolume=hv,
                        reference_point=tuple(ref.tolist()), wall_seconds=wall, output_dir=str(out),
                        failed=sum(1 for o in outcomes if o.error),
                        extra={**counts, "early_stopped": sum(1 for o in outcomes if o.early_stopped),
                               "epochs_trained": sum(int(o.metrics.get("epoch", 0)) for o in outcomes)})
