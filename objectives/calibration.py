"""Expected calibration error (JEI-DNN ``calibration.py``: equal-mass bins on the top-class
probability; reported as a fraction, not ×100)."""

from __future__ import annotations

import numpy as np


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE = Σ_b (|b|/N) · |acc(b) − conf(b)| over ``n_bins`` quantile bins of ``confidence``."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    if confidence.shape != correct.shape or confidence.ndim != 1:
        raise ValueError("confidence and correct must be 1-D arrays of equal length")
    n = len(confidence)
    if n == 0:
        return 0.0
    order = np.argsort(confidence, kind="stable")
    ece = 0.0
    for chunk in np.array_split(order, min(n_bins, n)):
        if len(chunk):
            ece += len(chunk) / n * abs(correct[chunk].mean() - confidence[chunk].mean())
    return float(ece)
