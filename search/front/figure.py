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
    """Scatter objective 1 (x) against objective 0 (y); the front as a staircase. With three or more
    objectives: every pair of them, one panel each (:func:`pairwise_figure`).

    Args:
        values: ``(N, 2)`` objective values (x = column 1, y = column 0).
        front: ``(N,)`` bool, rows on the front.
        names, modes: the two objectives' names and directions.
        labels: optional per-row annotation for front points (e.g. the trial's run name).
        note: a line under the plot (e.g. hypervolume and reference point).
        infeasible: ``(N,)`` bool, rows outside the search's constraints (never on the front).
    """
    if len(names) > 2:
        return pairwise_figure(values, front, names, modes, title=title, note=note, infeasible=infeasible)
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


def pairwise_figure(values: np.ndarray, front: np.ndarray, names: Sequence[str], modes: Sequence[str],
                    title: str = "", note: str = "", infeasible: np.ndarray | None = None):
    """Three or more objectives: one panel per pair (objective i on y, j on x), every trial grey, the
    trials on the (full-dimensional) front red; a projection of a front is no staircase, so none is
    drawn. A cost axis spanning more than a decade is logarithmic."""
    values = np.asarray(values, dtype=float)
    front = np.asarray(front, dtype=bool)
    bad = np.zeros(len(values), bool) if infeasible is None else np.asarray(infeasible, dtype=bool)
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 4.0), dpi=110, squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs):
        ax.scatter(values[~front & ~bad, j], values[~front & ~bad, i], c="0.7", s=18, label="trials")
        if bad.any():
            ax.scatter(values[bad, j], values[bad, i], c="C0", marker="x", s=18, alpha=0.6, label="infeasible")
        ax.scatter(values[front, j], values[front, i], c="C3", s=30, zorder=3, label="Pareto front")
        for axis, col in (("x", j), ("y", i)):
            if log_axis(values[:, col]):
                getattr(ax, f"set_{axis}scale")("log")
        ax.set_xlabel(f"{names[j]} ({modes[j]})")
        ax.set_ylabel(f"{names[i]} ({modes[i]})")
        ax.grid(alpha=0.3)
    axes[0][0].legend(loc="best", fontsize=7)
    fig.suptitle((title or "Pareto front") + f": {len(names)} objectives, pairwise", fontsize=10)
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
    if len(names) > 2:
        fig = _scatter3d(go, values, front, bad, names, modes, texts, links)
        fig.update_layout(title={"text": f"{title or 'Pareto front'}<br><sup>{subtitle}</sup>"},
                          template="plotly_white")
        return fig.to_html(full_html=True, include_plotlyjs=True, post_script=_CLICK)
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
    return fig.to_html(full_html=True, include_plotlyjs=True, post_script=_CLICK)


#: a click opens the run in the MLflow UI that shows the page (the artifact viewer's top window)
_CLICK = ("var p=document.getElementById('{plot_id}');p.on('plotly_click',function(d){var l=d.points[0].customdata;"
          "if(!l)return;var b;try{b=window.top.location.origin+window.top.location.pathname;}catch(e){"
          "b=document.referrer||'';}window.open(b.replace(/#.*$/,'')+l,'_blank');});")


def _scatter3d(go, values, front, bad, names, modes, texts, links):
    """Three or more objectives: an interactive 3-D scatter of the first three (rotate, zoom, hover,
    click to open a run), the front red; the others are in each point's hover text."""
    fig = go.Figure()
    for mask, name, colour, size in ((~front & ~bad, "trials", "rgba(140,140,140,0.7)", 4),
                                     (bad, "infeasible", "rgba(31,119,180,0.6)", 4),
                                     (front, "Pareto front", "#d62728", 7)):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        fig.add_trace(go.Scatter3d(x=values[idx, 1], y=values[idx, 2], z=values[idx, 0], mode="markers", name=name,
                                   marker={"color": colour, "size": size}, text=[texts[i] for i in idx],
                                   customdata=[links[i] for i in idx], hovertemplate="%{text}<extra></extra>"))
    fig.update_layout(scene={"xaxis_title": f"{names[1]} ({modes[1]})", "yaxis_title": f"{names[2]} ({modes[2]})",
                             "zaxis_title": f"{names[0]} ({modes[0]})"})
    return fig
