"""Matplotlib figure of a Pareto front: all trials grey, the front highlighted."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def pareto_figure(values: np.ndarray, front: np.ndarray, names: Sequence[str], modes: Sequence[str],
                  labels: Sequence[str] | None = None, title: str = ""):
    """Scatter objective 1 (x) against objective 0 (y); the front as a staircase.

    Args:
        values: ``(N, 2)`` objective values (x = column 1, y = column 0).
        front: ``(N,)`` bool, rows on the front.
        names, modes: the two objectives' names and directions.
        labels: optional per-row annotation for front points (e.g. the gate).
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    values = np.asarray(values, dtype=float)
    ax.scatter(values[~front, 1], values[~front, 0], c="0.7", s=22, label="trials")
    pts = values[front]
    order = np.argsort(pts[:, 1])
    pts = pts[order]
    ax.step(pts[:, 1], pts[:, 0], where="post", c="C3", lw=1.2)
    ax.scatter(pts[:, 1], pts[:, 0], c="C3", s=36, zorder=3, label="Pareto front")
    if labels is not None:
        front_labels = np.asarray(list(labels), dtype=object)[front][order]
        for (y, x), text in zip(pts, front_labels):
            ax.annotate(str(text), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlabel(f"{names[1]} ({modes[1]})")
    ax.set_ylabel(f"{names[0]} ({modes[0]})")
    ax.set_title(title or "Pareto front")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
