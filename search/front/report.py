"""Writing a search's Pareto front to the tracking store, and reading it back.

The live search writes from its in-memory :class:`~gatesearch.search.front.live.LiveFront`
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
import re
from typing import Any, Mapping, Sequence

import numpy as np

from gatesearch.objectives.metrics import (
    FINISHED_TRIALS,
    FRONT_SIZE,
    HYPERVOLUME,
    HYPERVOLUME_SHARE,
    PARETO_RANK,
)
from gatesearch.search.config.constraints import TAG_INFEASIBLE
from gatesearch.search.front.figure import pareto_figure, pareto_html
from gatesearch.search.front.live import LiveFront
from gatesearch.search.front.pareto import reference_point
from gatesearch.search.tracking.store import TAG_RANK, TrackingStore, TrialRecord

#: run-level summary keys every row carries, before the objective's own columns
BASE_COLUMNS = ("run_id", "trial")


def _number(text: str) -> Any:
    """A parameter read back from the store as it was logged: ``"16"`` -> 16, ``"0.0116"`` -> 0.0116
    (so tables format it like a live trial's), anything else unchanged."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            continue
    return text


def record_row(rec: TrialRecord, columns: Sequence[str], metrics: Sequence[str]) -> dict[str, Any]:
    """A finished child run as a summary row (params come back from the store as strings)."""
    row: dict[str, Any] = {"run_id": rec.run_id, "trial": rec.tags.get("mlflow.runName", rec.trial_id)}
    row.update({c: _number(rec.params[c]) for c in columns if c in rec.params})
    if "k" in columns and "k_effective" in rec.params:  # hash routes to 1 expert, softmax to all
        row["k"] = _number(rec.params["k_effective"])
    row.update({m: rec.metrics.get(m) for m in metrics})
    return row


def front_from_records(records: Sequence[TrialRecord], names: Sequence[str], modes: Sequence[str],
                       columns: Sequence[str] = (), metrics: Sequence[str] = ()) -> LiveFront:
    """A :class:`LiveFront` of the FINISHED runs among ``records`` (oldest first)."""
    front = LiveFront(names, modes)
    for rec in records:
        if rec.status == "FINISHED":
            front.add(rec.trial_id, rec.run_id, rec.metrics, record_row(rec, columns, metrics),
                      infeasible=rec.tags.get(TAG_INFEASIBLE, ""))
    return front


def read_front(store: TrackingStore, parent_id: str, names: Sequence[str], modes: Sequence[str],
               columns: Sequence[str] = (), metrics: Sequence[str] = ()):
    """Read-only: the FINISHED children of ``parent_id``, their objective matrix, Pareto
    ranks, one summary row each, and the front rows (sorted by the last objective). ``columns``
    and ``metrics`` (the objective's ``front_columns`` and ``summary_metrics``) add parameters
    and metrics to the rows."""
    records = [r for r in store.children(parent_id) if r.status == "FINISHED"]
    front = front_from_records(records, names, modes, columns, metrics)
    ranks = front.ranks()
    return records, front.values(), ranks, front.rows(ranks), front.front_rows()


def write_front(store: TrackingStore, parent_id: str, front: LiveFront, ref: np.ndarray, *, title: str = "",
                step: int | None = None, artifacts: bool = True, label: str = "", experiment_id: str = "",
                metrics: bool = True, progress: Mapping[str, float] | None = None) -> float:
    """Log the hypervolume/front size (cheap; not with ``metrics=False``: that step is logged
    already) and, with ``artifacts``, the front's files and the changed ``pareto_rank`` tags.
    ``progress``: more metrics of the same step (the epochs trained and seconds so far, for the
    hypervolume-over-time figure). Returns the hypervolume."""
    hv = front.hypervolume(ref)
    rows_front = front.front_rows()
    step = len(front) if step is None else step
    if metrics:
        store.log_batch(parent_id, metrics={HYPERVOLUME.name: hv, HYPERVOLUME_SHARE.name: front.hypervolume_share(ref),
                                            FRONT_SIZE.name: len(rows_front), FINISHED_TRIALS.name: len(front),
                                            **(progress or {})},
                        step=step)
    if not artifacts:
        return hv
    ranks = front.ranks()
    for run_id, rank in front.rank_changes(ranks).items():
        # a tag (filter/search) and a metric (sortable, usable as a colour in the chart views)
        store.log_batch(run_id, tags={TAG_RANK: rank}, metrics={PARETO_RANK.name: rank}, step=step)
    store.log_batch(parent_id, tags={NOTE: front_markdown(front, ref, hv, experiment_id)})
    store.log_dict(parent_id, {"objectives": list(front.names), "modes": list(front.modes),
                               "reference_point": [float(v) for v in ref], "hypervolume": hv, "front": rows_front},
                   "pareto_front.json")
    store.log_text(parent_id, _csv(rows_front), "pareto_front.csv")
    rows = front.rows(ranks)
    store.log_dict(parent_id, {"trials": rows}, "trials.json")
    if len(front):
        import matplotlib.pyplot as plt

        infeasible = ~front.feasible()
        note = (f"hypervolume {hv:,.6g} w.r.t. reference point "
                f"({', '.join(f'{n} {v:,.6g}' for n, v in zip(front.names, ref))}); {len(front)} finished trials"
                + (f", {int(infeasible.sum())} infeasible" if infeasible.any() else ""))
        on_front = (ranks == 0) & ~infeasible
        fig = pareto_figure(front.values(), on_front, front.names, front.modes,
                            labels=[str(r.get(label, "")) for r in rows] if label else None, title=title, note=note,
                            infeasible=infeasible)
        store.log_figure(parent_id, fig, "pareto_front.png")
        plt.close(fig)
        links = [run_link(experiment_id, r["run_id"]) if experiment_id else "" for r in rows]
        store.log_text(parent_id, pareto_html(rows, front.values(), on_front, front.names, front.modes,
                                              links=links, title=title, subtitle=note, infeasible=infeasible),
                       "pareto_front.html")
    return hv


#: MLflow shows this tag as the run's description (Markdown)
NOTE = "mlflow.note.content"


#: the MLflow UI's view of runs for model training (MLflow 3.x opens runs in its GenAI
#: "Evaluations" view unless the address says otherwise; the experiment's kind tag does not)
UI_VIEW = "workflowType=machine_learning"


def run_link(experiment_id: str, run_id: str) -> str:
    """The MLflow UI's (hash-routed) address of a run, relative to the UI's root, in the
    model-training view (:data:`UI_VIEW`)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}?{UI_VIEW}"


def front_markdown(front: LiveFront, ref: Sequence[float], hv: float, experiment_id: str = "") -> str:
    """The parent run's description: the front as a Markdown table, each trial linked to its run,
    then hypervolume, reference point and trial counts."""
    rows = front.front_rows()
    skip = {"run_id", "trial", "pareto_rank"}
    cols = [c for c in (rows[0] if rows else {}) if c not in skip]
    bad = front.infeasible_count()
    lines = [f"**Pareto front**: {len(rows)} of {len(front)} finished trials"
             + (f" ({bad} infeasible, kept off the front: their tag `{TAG_INFEASIBLE}` says why)" if bad else ""), "",
             "| trial | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        name = r.get("trial", r["run_id"])
        cell = f"[{_md(name)}]({run_link(experiment_id, r['run_id'])})" if experiment_id else _md(name)
        lines.append(f"| {cell} | " + " | ".join(_md(r.get(c)) for c in cols) + " |")
    lines += ["", f"hypervolume **{hv:,.6g}** (share of the box to the ideal point: {front.hypervolume_share(ref):.3f}); "
              f"reference point ({', '.join(f'{front.names[i]} {v:,.6g}' for i, v in enumerate(ref))})"]

    return "\n".join(lines)[:4900]


#: Markdown's active characters in a table cell: escaped, so a run name or a value cannot become
#: a link, an image, HTML or emphasis in the parent's description
_MD_ACTIVE = re.compile(r"([\\`*_{}\[\]()<>#!|~])")


def _md(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    return "" if v is None else _MD_ACTIVE.sub(r"\\\1", str(v).replace("\n", " "))


#: what a spreadsheet reads as the start of a formula (OWASP's CSV injection list)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v: Any) -> Any:
    """A CSV cell as written: a text that a spreadsheet would run as a formula gets a leading ``'``
    (a number written as text, e.g. ``-0.5``, is left as it is)."""
    if isinstance(v, str) and v.startswith(_FORMULA) and not isinstance(_number(v), (int, float)):
        return "'" + v
    return v


def log_front(store: TrackingStore, parent_id: str, names: tuple[str, ...], modes: tuple[str, ...],
              title: str = "", ref: np.ndarray | None = None, columns: Sequence[str] = (),
              metrics: Sequence[str] = ()) -> tuple[list[dict], list[dict], float, np.ndarray]:
    """Recompute the front from the store's FINISHED child runs and log it (idempotent: tags are
    overwritten, artifacts replaced, nothing duplicated). ``ref`` defaults to
    :func:`reference_point` of the data; ``columns``/``metrics`` as in :func:`read_front`.
    Returns (all rows, front rows, hypervolume, reference)."""
    records = [r for r in store.children(parent_id) if r.status == "FINISHED"]
    front = front_from_records(records, names, modes, columns, metrics)
    if ref is None:
        ref = reference_point(front.values(), modes) if len(front) else np.zeros(len(names))
    hv = write_front(store, parent_id, front, ref, title=title, label="trial",
                     experiment_id=getattr(store, "experiment_id", ""))
    return front.rows(), front.front_rows(), hv, ref


def _csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:  # rows of trials from different drivers (resume) may differ: every key, first seen first
        writer = csv.DictWriter(buf, fieldnames=list(dict.fromkeys(k for r in rows for k in r)), restval="")
        writer.writeheader()
        writer.writerows({k: _cell(v) for k, v in r.items()} for r in rows)
    return buf.getvalue()
