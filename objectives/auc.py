"""ROC AUC for binary and multi-class tasks (scikit-learn), averaged over tasks."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def roc_auc(probs: np.ndarray, y: np.ndarray) -> float:
    """AUC of one task: binary (positive-class probability) or one-vs-rest macro for C > 2.
    NaN when the labels hold a single class (AUC undefined)."""
    from sklearn.metrics import roc_auc_score

    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    if len(np.unique(y)) < 2:
        return float("nan")
    if probs.ndim == 1 or probs.shape[1] == 2:
        return float(roc_auc_score(y, probs if probs.ndim == 1 else probs[:, 1]))
    present = np.unique(y)
    if len(present) < probs.shape[1]:  # score only the classes that occur
        return float(np.mean([roc_auc_score(y == c, probs[:, c]) for c in present]))
    return float(roc_auc_score(y, probs, multi_class="ovr", average="macro"))


def mean_task_auc(task_probs: Sequence[np.ndarray], y: np.ndarray) -> float:
    """Mean AUC over tasks (``y`` is ``(N, T)``), ignoring tasks where it is undefined."""
    values = [roc_auc(p, y[:, t]) for t, p in enumerate(task_probs)]
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
