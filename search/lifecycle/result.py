"""What a search leaves behind: :class:`SearchResult` (returned by ``run_search``, ``resume_search``,
``extend_search`` and ``load_search``) and how to find the latest search of an experiment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from gatesearch.search.tracking.store import TrackingStore


@dataclass(frozen=True)
class SearchResult:
    """What a search left behind (:func:`run_search`, :func:`resume_search`,
    :func:`extend_search`; :func:`gatesearch.load_search` reads one back from its store).

    ``trials``: one row per finished trial (its parameters, objectives, ``run_id``, ``trial``, and
    ``pareto_rank`` where known); ``front``: the rows of the non-dominated feasible trials;
    ``failures``: one row per failed trial (``trial``, ``run_id``, ``reason``); ``hypervolume`` of
    the front inside the box from ``reference_point``; ``importances``: per objective (and for
    reaching the front), how much each searched parameter mattered (PED-ANOVA; empty with fewer
    than 8 finished trials), also on the parent run as ``importances.json``/``.png``. In a notebook: :attr:`trials_df`,
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
    #: per objective (and "pareto front"): each searched parameter's importance, PED-ANOVA, normalised
    importances: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

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
        from gatesearch.search.front.figure import pareto_figure

        values = np.array([[float(r.get(n, np.nan)) for n in self.objectives] for r in self.trials], dtype=float)
        front = {r.get("run_id") for r in self.front}
        on_front = np.array([r.get("run_id") in front for r in self.trials], dtype=bool)
        infeasible = np.array([bool(r.get("infeasible")) for r in self.trials], dtype=bool)
        return pareto_figure(values.reshape(len(self.trials), len(self.objectives)), on_front, self.objectives,
                             self.modes, labels=[str(r.get("trial", "")) for r in self.trials],
                             title=title or self.experiment, infeasible=infeasible)


def latest_search(tracker: TrackingStore) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
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
