"""Writing a search's Pareto front to the tracking store, and reading it back.

The live search writes from its in-memory :class:`~gatesearch.search.front.LiveFront`
(:func:`write_front`); ``gatesearch pareto`` and the tests recompute the front from the
finished child runs in the store (:func:`read_front`, :func:`log_front`).

What a front write leaves on the parent run: ``pareto_front.json`` (objectives, modes,
reference point, hypervolume, front rows), ``pareto_front.csv``, ``trials.json`` (every finished
trial with its rank), ``pareto_front.png``, and a ``pareto_rank`` tag on every child whose rank
changed since the previous write.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Mapping, Sequence

import numpy as np

from gatesearch.objectives.metrics import ACTIVE_EXPERTS, TEST_ACCURACY
from gatesearch.search.figure import pareto_figure
from gatesearch.search.front import LiveFront
from gatesearch.search.pareto import reference_point
from gatesearch.search.store import TAG_RANK, TrackingStore, TrialRecord

#: run-level summary keys every row carries, before the objective's own columns
BASE_COLUMNS = ("run_id", "trial")


def record_row(rec: TrialRecord, columns: Sequence[str], metrics: Sequence[str]) -> dict[str, Any]:
    """A finished child run as a summary row (params come back from the store as strings)."""
    row: dict[str, Any] = {"run_id": rec.run_id, "trial": rec.tags.get("mlflow.runName", rec.trial_id)}
    row.update({c: rec.params[c] for c in columns if c in rec.params})
    if "k" in columns and "k_effective" in rec.params:  # hash routes to 1 expert, softmax to all
        row["k"] = rec.params["k_effective"]
    row.update({m: rec.metrics.get(m) for m in metrics})
    return row


def front_from_records(records: Sequence[TrialRecord], names: Sequence[str], modes: Sequence[str],
                       columns: Sequence[str] = (), metrics: Sequence[str] = ()) -> LiveFront:
    """A :class:`LiveFront` of the FINISHED runs among ``records`` (oldest first)."""
    front = LiveFront(names, modes)
    for rec in records:
        if rec.status == "FINISHED":
            front.add(rec.trial_id, rec.run_id, rec.metrics, record_row(rec, columns, metrics))
    return front


def read_front(store: TrackingStore, parent_id: str, names: Sequence[str], modes: Sequence[str],
               columns: Sequence[str] = ("gate", "n_experts", "k", "local_search", "n_blocks", "lambda_cost",
                                         "confidence", "lr"),
               metrics: Sequence[str] = (TEST_ACCURACY.name, ACTIVE_EXPERTS.name)):
    """Read-only: the FINISHED children of ``parent_id``, their objective matrix, Pareto
    ranks, one summary row each, and the front rows (sorted by the last objective)."""
    records = [r for r in store.children(parent_id) if r.status == "FINISHED"]
    front = front_from_records(records, names, modes, columns, metrics)
    ranks = front.ranks()
    return records, front.values(), ranks, front.rows(ranks), front.front_rows()


def write_front(store: TrackingStore, parent_id: str, front: LiveFront, ref: np.ndarray, *, title: str = "",
                step: int | None = None, artifacts: bool = True, label: str = "") -> float:
    """Log the hypervolume/front size (cheap) and, with ``artifacts``, the front's files and the
    changed ``pareto_rank`` tags. Returns the hypervolume."""
    hv = front.hypervolume(ref)
    rows_front = front.front_rows()
    store.log_batch(parent_id, metrics={"hypervolume": hv, "front_size": len(rows_front),
                                        "finished_trials": len(front)},
                    step=len(front) if step is None else step)
    if not artifacts:
        return hv
    ranks = front.ranks()
    for run_id, rank in front.rank_changes(ranks).items():
        store.log_batch(run_id, tags={TAG_RANK: rank})
    store.log_dict(parent_id, {"objectives": list(front.names), "modes": list(front.modes),
                               "reference_point": [float(v) for v in ref], "hypervolume": hv, "front": rows_front},
                   "pareto_front.json")
    store.log_text(parent_id, _csv(rows_front), "pareto_front.csv")
    rows = front.rows(ranks)
    store.log_dict(parent_id, {"trials": rows}, "trials.json")
    if len(front):
        import matplotlib.pyplot as plt

        fig = pareto_figure(front.values(), ranks == 0, front.names, front.modes,
                            labels=[str(r.get(label, "")) for r in rows] if label else None, title=title)
        store.log_figure(parent_id, fig, "pareto_front.png")
        plt.close(fig)
    return hv


def log_front(store: TrackingStore, parent_id: str, names: tuple[str, ...], modes: tuple[str, ...],
              title: str = "", ref: np.ndarray | None = None) -> tuple[list[dict], list[dict], float, np.ndarray]:
    """Recompute the front from the store's FINISHED child runs and log it (idempotent: tags are
    overwritten, artifacts replaced, nothing duplicated). ``ref`` defaults to
    :func:`reference_point` of the data. Returns (all rows, front rows, hypervolume, reference)."""
    records = [r for r in store.children(parent_id) if r.status == "FINISHED"]
    front = front_from_records(records, names, modes, ("gate", "n_experts", "k", "local_search", "lr"),
                               (TEST_ACCURACY.name, ACTIVE_EXPERTS.name))
    if ref is None:
        ref = reference_point(front.values(), modes) if len(front) else np.zeros(len(names))
    hv = write_front(store, parent_id, front, ref, title=title, label="gate")
    return front.rows(), front.front_rows(), hv, ref


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()
