"""Split-conformal prediction sets (JEI-DNN ``conformal_eedn.py``), optionally per exit.

Score s = 1 − p_y on the calibration (validation) samples; q̂ = the ⌈(n+1)(1−α)⌉/n empirical
quantile ("higher"); the set of a test sample is {y : p_y >= 1 − q̂}. With ``groups`` (the exit
each sample took), q̂ is computed per group from the calibration samples of that group, falling
back to all calibration samples when a group has ``<= min_group`` of them.
"""

from __future__ import annotations

import math

import numpy as np


def conformal_quantile(scores: np.ndarray, alpha: float) -> float:
    n = len(scores)
    if n == 0:
        return 1.0
    level = min(1.0, math.ceil((n + 1) * (1 - alpha)) / n)
    return float(np.quantile(scores, level, method="higher"))


def split_conformal(cal_probs: np.ndarray, cal_y: np.ndarray, test_probs: np.ndarray, test_y: np.ndarray, *,
                    alpha: float = 0.05, cal_groups: np.ndarray | None = None,
                    test_groups: np.ndarray | None = None, min_group: int = 20) -> dict[str, float]:
    """Empirical coverage and mean set size on the test samples."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    cal_scores = 1 - cal_probs[np.arange(len(cal_y)), cal_y]
    q_all = conformal_quantile(cal_scores, alpha)
    qhat = np.full(len(test_y), q_all)
    if cal_groups is not None and test_groups is not None:
        for g in np.unique(test_groups):
            mine = cal_scores[cal_groups == g]
            if len(mine) > min_group:
                qhat[test_groups == g] = conformal_quantile(mine, alpha)
    sets = test_probs >= (1 - qhat)[:, None]
    covered = sets[np.arange(len(test_y)), test_y]
    return {"coverage": float(covered.mean()) if len(test_y) else 0.0,
            "set_size": float(sets.sum(axis=1).mean()) if len(test_y) else 0.0}
