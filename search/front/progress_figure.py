"""How a search's front grew: the hypervolume against finished trials, against epochs trained (the
proxy for GPU-hours) and against wall clock, in one matplotlib figure with the reference point named.
Read from the parent run's metric histories (``hypervolume``, ``hypervolume_epochs``,
``hypervolume_seconds``: one value per step, the step being the finished trials)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gatesearch.objectives.metrics import HV_EPOCHS, HV_SECONDS, HYPERVOLUME  # noqa: E402


def hypervolume_series(histories: Mapping[str, Sequence[tuple[int, float]]]) -> dict[str, list[float]]:
    """The three histories aligned on their steps: ``{"trials", "hypervolume", "epochs", "seconds"}``
    (a step without an epochs or seconds value, logged before they were, has NaN there)."""
    hv = dict(histories.get(HYPERVOLUME.name, ()))
    epochs, seconds = dict(histories.get(HV_EPOCHS.name, ())), dict(histories.get(HV_SECONDS.name, ()))
    steps = sorted(hv)
    nan = float("nan")
    return {"trials": [float(s) for s in steps], "hypervolume": [hv[s] for s in steps],
            "epochs": [epochs.get(s, nan) for s in steps], "seconds": [seconds.get(s, nan) for s in steps]}


def hypervolume_figure(series: Mapping[str, Sequence[float]], names: Sequence[str], reference: Sequence[float],
                       title: str = ""):
    """Three panels sharing the y axis: hypervolume against finished trials, epochs trained and
    minutes of wall clock (a step function: the front changes only when a trial finishes)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
    x_axes = (("trials", "finished trials", 1.0), ("epochs", "epochs trained", 1.0),
              ("seconds", "wall clock (minutes)", 1 / 60))
    for ax, (key, label, scale) in zip(axes, x_axes):
        pairs = [(x * scale, y) for x, y in zip(series[key], series["hypervolume"]) if x == x]
        if pairs:
            xs, ys = zip(*pairs)
            ax.step(xs, ys, where="post", marker="o", markersize=3)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("hypervolume")
    ref = ", ".join(f"{n} {v:,.6g}" for n, v in zip(names, reference))
    fig.suptitle((f"{title}: " if title else "") + f"hypervolume over time (reference point: {ref})", fontsize=10)
    fig.tight_layout()
    return fig


def importance_figure(importances: Mapping[str, Mapping[str, float]], title: str = ""):
    """One horizontal bar chart per objective (and one for reaching the front): each searched
    parameter's importance, largest on top."""
    targets = list(importances)
    fig, axes = plt.subplots(1, max(1, len(targets)), figsize=(4 * max(1, len(targets)), 3.2), squeeze=False)
    for ax, target in zip(axes[0], targets):
        items = sorted(importances[target].items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items])
        ax.set_title(target, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_xlabel("importance (PED-ANOVA, normalised)")
    fig.suptitle((f"{title}: " if title else "") + "parameter importances", fontsize=10)
    fig.tight_layout()
    return fig
