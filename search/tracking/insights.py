"""What a finished search says beyond its front, logged to its parent run: which parameters mattered
(``importances.json`` and ``importances.png``, per objective: :mod:`gatesearch.search.front.importance`),
how the front grew (``hypervolume_over_time.json`` and ``.png``: hypervolume against finished trials,
epochs trained and wall clock), and ``report.html`` with both figures and a link to the front's own
interactive page (``pareto_front.html``)."""

from __future__ import annotations

import base64
import html
import io
import logging
from typing import Any, Sequence

from gatesearch.objectives.metrics import HV_EPOCHS, HV_SECONDS, HYPERVOLUME
from gatesearch.search.tracking.store import TrackingStore

IMPORTANCES_FILE = "importances.json"
HV_FILE = "hypervolume_over_time.json"
REPORT_FILE = "report.html"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def log_insights(store: TrackingStore, parent_id: str, study: Any, names: Sequence[str], modes: Sequence[str],
                 reference: Sequence[float], title: str = "") -> dict[str, dict[str, float]]:
    """Compute and log the importances and the hypervolume-over-time figure of a finished search;
    return the importances (empty when too few trials). ``study``: the search's Optuna mirror (its
    finished trials), or None."""
    import matplotlib.pyplot as plt

    from gatesearch.search.front.importance import MIN_TRIALS, importances
    from gatesearch.search.front.progress_figure import hypervolume_figure, hypervolume_series, importance_figure

    found: dict[str, dict[str, float]] = {}
    if study is not None:
        found = importances(study, names, modes)
    store.log_dict(parent_id, {"method": "PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator), normalised",
                               "importances": found,
                               **({} if found else {"why_empty": f"fewer than {MIN_TRIALS} finished trials, or "
                                                                  f"no searched parameter varied"})},
                   IMPORTANCES_FILE)
    images = []
    if found:
        fig = importance_figure(found, title)
        store.log_figure(parent_id, fig, "importances.png")
        images.append(("Parameter importances", _png(fig)))
        plt.close(fig)
    histories = {k: store.metric_history(parent_id, k) for k in (HYPERVOLUME.name, HV_EPOCHS.name, HV_SECONDS.name)}
    series = hypervolume_series(histories)
    store.log_dict(parent_id, {"reference_point": dict(zip(names, map(float, reference))), **series}, HV_FILE)
    if series["trials"]:
        fig = hypervolume_figure(series, names, reference, title)
        store.log_figure(parent_id, fig, "hypervolume_over_time.png")
        images.insert(0, ("Hypervolume over time", _png(fig)))
        plt.close(fig)
    body = "".join(f"<h2>{html.escape(h)}</h2><img alt='{html.escape(h)}' src='data:image/png;base64,{b}'>"
                   for h, b in images)
    store.log_text(parent_id, f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
                              f"<h1>{html.escape(title)}</h1><p><a href='pareto_front.html'>The Pareto front "
                              f"(interactive)</a></p>{body}", REPORT_FILE)
    logging.getLogger(__name__).debug("insights logged for %s", parent_id)
    return found
