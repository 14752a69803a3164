"""Matplotlib figure of a Pareto front: all trials grey, the front highlighted, infeasible trials
(outside the search's constraints) drawn apart as hollow crosses."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: a cost axis spanning more than this ratio (max / min, all positive) is drawn on a log scale: on
#: a linear one, a front of cheap trials beside a few dense ones sits in one vertical line
LOG_AXIS_RATIO = 10.0


def log_axis(x: np.ndarray) -> bool:
    """Whether the x (cost) values span more than a decade (and are all positive and finite)."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return bool(len(x)) and bool((x > 0).all()) and x.max() / x.min() > LOG_AXIS_RATIO


def pareto_figure(values: np.ndarray, front: np.ndarray, names: Sequence[str], modes: Sequence[str],
                  labels: Sequence[str] | None = None, title: str = "", note: str = "",
                  infeasible: np.ndarray | None = None):
    """Scatter objective 1 (x) against objective 0 (y); the front as a staircase.

    Args:
        values: ``(N, 2)`` objective values (x = column 1, y = column 0).
        front: ``(N,)`` bool, rows on the front.
        names, modes: the two objectives' names and directions.
        labels: optional per-row annotation for front points (e.g. the trial's run name).
        note: a line under the plot (e.g. hypervolume and reference point).
        infeasible: ``(N,)`` bool, rows outside the search's constraints (never on the front).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    values = np.asarray(values, dtype=float)
    bad = np.zeros(len(values), bool) if infeasible is None else np.asarray(infeasible, dtype=bool)
    ax.scatter(values[~front & ~bad, 1], values[~front & ~bad, 0], c="0.7", s=22, label="trials")
    if bad.any():
        ax.scatter(values[bad, 1], values[bad, 0], c="C0", marker="x", s=22, alpha=0.6, label="infeasible")
    pts = values[front]
    order = np.argsort(pts[:, 1])
    pts = pts[order]
    ax.step(pts[:, 1], pts[:, 0], where="post", c="C3", lw=1.2)
    ax.scatter(pts[:, 1], pts[:, 0], c="C3", s=36, zorder=3, label="Pareto front")
    if labels is not None:
        front_labels = np.asarray(list(labels), dtype=object)[front][order]
        for (y, x), text in zip(pts, front_labels):
            ax.annotate(str(text), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    if log_axis(values[:, 1]):
        ax.set_xscale("log")
    ax.set_xlabel(f"{names[1]} ({modes[1]})" + (", log scale" if log_axis(values[:, 1]) else ""))
    ax.set_ylabel(f"{names[0]} ({modes[0]})")
    ax.set_title(title or "Pareto front")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="0.3")
    fig.tight_layout(rect=(0, 0.04 if note else 0, 1, 1))
    return fig


def pareto_html(rows: Sequence[dict], values: np.ndarray, front: np.ndarray, names: Sequence[str],
                modes: Sequence[str], *, links: Sequence[str] = (), title: str = "", subtitle: str = "",
                infeasible: np.ndarray | None = None) -> str:
    """A self-contained interactive front (plotly, plotly.js inlined: no CDN, works offline).

    Every trial is a point (x = objective 1, y = objective 0); the front is highlighted and
    joined by its staircase. Hovering shows the trial's name, run id, its configuration columns
    and objective values; clicking a point opens its MLflow run (``links``: UI-relative run
    addresses, e.g. ``#/experiments/1/runs/<id>``, resolved against the MLflow UI that shows
    the page) in a new tab. ``infeasible`` rows (outside the search's constraints) are their own
    trace, hollow crosses, and say why on hover.
    """
    import plotly.graph_objects as go

    values = np.asarray(values, dtype=float).reshape(len(rows), len(names))
    front = np.asarray(front, dtype=bool)
    bad = np.zeros(len(rows), bool) if infeasible is None else np.asarray(infeasible, dtype=bool)
    skip = {"run_id", "trial", "pareto_rank", *names}

    def hover(r: dict) -> str:
        cfg = "<br>".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in r.items()
                          if k not in skip and v is not None)
        objs = "<br>".join(f"<b>{n}</b>: {r.get(n):,.6g}" for n in names if isinstance(r.get(n), (int, float)))
        return f"<b>{r.get('trial', '')}</b><br>run {r.get('run_id', '')}<br>{cfg}<br>{objs}"

    texts = [hover(r) for r in rows]
    links = list(links) or [""] * len(rows)
    fig = go.Figure()
    for mask, name, colour, size, symbol in ((~front & ~bad, "trials", "rgba(140,140,140,0.7)", 8, "circle"),
                                             (bad, "infeasible", "rgba(31,119,180,0.6)", 8, "x-thin-open"),
                                             (front, "Pareto front", "#d62728", 12, "circle")):
        idx = np.flatnonzero(mask)
        if name == "infeasible" and not len(idx):
            continue
        fig.add_trace(go.Scatter(x=values[idx, 1], y=values[idx, 0], mode="markers", name=name,
                                 marker={"color": colour, "size": size, "symbol": symbol,
                                         **({"line": {"width": 2, "color": colour}} if name == "infeasible" else {})},
                                 text=[texts[i] for i in idx],
                                 customdata=[links[i] for i in idx], hovertemplate="%{text}<extra></extra>"))
    order = np.flatnonzero(front)[np.argsort(values[front, 1])]
    fig.add_trace(go.Scatter(x=values[order, 1], y=values[order, 0], mode="lines", line={"shape": "hv",
                             "color": "#d62728", "width": 1}, hoverinfo="skip", showlegend=False))
    fig.update_layout(title={"text": f"{title or 'Pareto front'}<br><sup>{subtitle}</sup>"},
                      xaxis_title=f"{names[1]} ({modes[1]})", yaxis_title=f"{names[0]} ({modes[0]})",
                      template="plotly_white", hovermode="closest")
    if log_axis(values[:, 1]):
        fig.update_xaxes(type="log")
    # a click opens the run in the MLflow UI that shows this page (the artifact viewer's top window)
    click = ("var p=document.getElementById('{plot_id}');p.on('plotly_click',function(d){var l=d.points[0].customdata;"
             "if(!l)return;var b;try{b=window.top.location.origin+window.top.location.pathname;}catch(e){"
             "b=document.referrer||'';}window.open(b.replace(/#.*$/,'')+l,'_blank');});")
    return fig.to_html(full_html=True, include_plotlyjs=True, post_script=click)
