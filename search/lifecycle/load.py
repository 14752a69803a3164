"""``gatesearch.load_search``: an earlier search back as a :class:`~gatesearch.search.lifecycle.runner.SearchResult`.

For a notebook: the front and the trials as pandas DataFrames, failed trials with their reason,
and a figure, read from the search's tracking store (nothing is written, no Ray)::

    import gatesearch
    result = gatesearch.load_search("gatesearch-runs")     # or a search dir, or a parent run id
    result.front_df                                       # pandas
    result.trials_df[result.trials_df.status == "FAILED"][["trial", "reason"]]
    result.plot()                                         # shown inline
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from gatesearch.search.lifecycle.manifest import MANIFEST, Manifest
from gatesearch.search.system.redact import shown, without_password

RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def _search_dir(p: Path) -> Path:
    """``p`` if it holds a manifest, else the one search under ``p/ray`` (an output dir)."""
    if (p / MANIFEST).exists():
        return p
    found = sorted(m.parent for m in p.glob(f"ray/*/{MANIFEST}"))
    if len(found) == 1:
        return found[0]
    raise ValueError(f"{p}: " + (f"{len(found)} searches here; pass one of: " + ", ".join(map(str, found)) if found
                                 else f"no gatesearch search here (no {MANIFEST}); pass the search directory "
                                      "`gatesearch run` printed, its output folder, or a parent run id"))


def load_search(source: str | Path, *, tracking_uri: str | None = None):
    """The search ``source`` as a :class:`~gatesearch.search.lifecycle.runner.SearchResult` (finished or
    interrupted): a search dir, an output folder holding one search, or a parent run id in
    ``tracking_uri`` (default: ``./gatesearch-runs``'s store). Read-only.

    Raises ``ValueError`` naming what is wrong (no search there, an unknown run, a run that is not
    a search)."""
    from gatesearch.objectives import get_objective
    from gatesearch.search.front.pareto import reference_point
    from gatesearch.search.front.report import front_from_records
    from gatesearch.search.lifecycle.runner import DEFAULT_OUTPUT, SearchResult, default_tracking_uri
    from gatesearch.search.tracking.store import TAG_ERROR, TAG_ROLE, TAG_SEARCH
    from gatesearch.search.tracking.tracker import Tracker

    status, search_dir, optuna_storage, output_dir = "finished", "", "", ""
    p = Path(str(source)).expanduser()
    if p.exists():
        d = _search_dir(p.resolve())
        m = Manifest.read(d)
        uri = m.tracking_uri
        if tracking_uri and without_password(tracking_uri) == without_password(uri):
            uri = tracking_uri  # the same store, given with its password
        parent, status, search_dir, output_dir = m.parent_run_id, m.status, str(d), m.output_dir
        optuna_storage = m.optuna_storage or f"sqlite:///{Path(m.output_dir) / 'optuna.db'}"
    elif RUN_ID.match(str(source)):
        uri = tracking_uri or default_tracking_uri(DEFAULT_OUTPUT)
        parent = str(source)
    else:
        raise ValueError(f"{source}: neither a folder nor an MLflow run id (32 hex digits); pass a search directory, "
                         f"its output folder, or the parent run id shown in MLflow")
    experiment, params, tags = Tracker.find_run(uri, parent)
    if tags.get(TAG_ROLE) != "search":
        raise ValueError(f"run {parent} in {shown(uri)} is not a gatesearch search (parent) run")
    pairs = [x.split(":") for x in params.get("objectives", "").split(",") if ":" in x]
    names, modes = tuple(n for n, _ in pairs), tuple(m for _, m in pairs)
    tracker = Tracker(uri, experiment)
    children = tracker.children(parent)
    try:
        obj = get_objective(params.get("objective", ""))
        columns, metrics = tuple(obj.front_columns), tuple(obj.summary_metrics)
    except ValueError:  # a user's objective that is not importable here: what its trials searched
        fixed = {k[len("fixed."):] for k in params if k.startswith("fixed.")}
        finished = [c for c in children if c.status == "FINISHED"]
        columns, metrics = tuple(k for k in (finished[0].params if finished else {}) if k not in fixed)[:6], ()
    front = front_from_records(children, names, modes, columns, metrics)
    ranks = front.ranks() if len(front) else np.zeros(0, int)
    rows = front.rows(ranks) if len(front) else []
    front_rows = front.front_rows() if len(front) else []
    ref = params.get("reference_point")
    feasible = front.feasible() if len(front) else np.zeros(0, bool)
    reference = (np.array(json.loads(ref), dtype=float) if ref else
                 reference_point(front.values()[feasible], modes) if feasible.any() else np.zeros(len(names)))
    failures = tuple({"trial": c.tags.get("mlflow.runName", c.trial_id), "run_id": c.run_id,
                      "reason": c.tags.get(TAG_ERROR, "failed (no reason recorded)")}
                     for c in children if c.status == "FAILED")
    wall = tracker.metric_history(parent, "wall_seconds")
    from gatesearch.search.tracking.insights import IMPORTANCES_FILE

    importances = (tracker.load_dict(parent, IMPORTANCES_FILE) or {}).get("importances") or {}
    return SearchResult(
        search_id=tags.get(TAG_SEARCH, ""), parent_run_id=parent, tracking_uri=uri, experiment=experiment,
        objectives=names, modes=modes, trials=rows, front=front_rows,
        hypervolume=front.hypervolume(reference) if feasible.any() else 0.0, reference_point=tuple(reference.tolist()),
        wall_seconds=float(wall[-1][1]) if wall else 0.0, output_dir=output_dir, search_dir=search_dir,
        failed=len(failures), columns=columns, experiment_id=tracker.experiment_id, optuna_storage=optuna_storage,
        summary_metrics=metrics, failures=failures, status=status, importances=importances)
