"""A surrogate benchmark: a regression model fitted on real evaluations stands in for training.

As HPOBench's and YAHPO Gym's surrogate benchmarks do, a model trained on a few thousand real
trainings (``bench/evaluations.py``) answers a configuration with a predicted learning curve,
so searchers can be compared over many seeds for the cost of a prediction. The model is a
random forest (scikit-learn; multi-output: the objective and log MACs after each of the 9
epochs) over an encoding of the conditional configuration in which an inactive parameter
takes a value outside its range. Its fidelity is measured on held-out real evaluations
(:func:`held_out_quality`) and reported with every result: a surrogate that ranks
configurations wrongly would make any searcher comparison meaningless.
"""

from __future__ import annotations

import json
import math
from typing import Mapping, Sequence

import numpy as np

GATES = ("topk", "hash", "dselect_k", "comet", "softmax")


def encode(cfg: Mapping) -> list[float]:
    """Numeric features of a configuration of ``bench/evaluations.py``'s space."""
    def log(name: str, missing: float) -> float:
        return math.log10(cfg[name]) if name in cfg else missing

    def flag(name: str) -> float:
        return float(cfg[name]) if name in cfg else -1.0

    return [*(float(cfg["gate"] == g) for g in GATES), float(cfg["n_experts"]), float(cfg.get("k", 0)),
            float(cfg.get("tree_depth", -1)), log("gamma", -3.0), log("entropy_weight", -4.0), flag("noisy"),
            flag("local_search"), float(cfg.get("ls_budget_epochs", 0.0)), log("lr", -4.0),
            math.log2(cfg["expert_hidden"])]


def _targets(rows: Sequence[Mapping]) -> np.ndarray:
    """``(N, 2E)``: the objective after each epoch, then log10 MACs after each epoch."""
    curves = np.array([r["curve"] for r in rows], dtype=float)  # (N, E, 2)
    metric = np.nan_to_num(curves[:, :, 0], nan=0.0)
    macs = np.log10(np.maximum(curves[:, :, 1], 1.0))
    return np.concatenate([metric, macs], axis=1)


class Surrogate:
    """``curve(config) -> [[objective, MACs], ...]`` per epoch, predicted (cached per config)."""

    def __init__(self, rows: Sequence[Mapping], *, seed: int = 0, trees: int = 60):
        from sklearn.ensemble import RandomForestRegressor

        self.epochs = len(rows[0]["curve"])
        self.model = RandomForestRegressor(n_estimators=trees, min_samples_leaf=2, random_state=seed, n_jobs=1)
        self.model.fit(np.array([encode(r["config"]) for r in rows]), _targets(rows))
        self._cache: dict[str, list[list[float]]] = {}

    def predict(self, configs: Sequence[Mapping]) -> np.ndarray:
        """``(N, E, 2)`` predicted curves."""
        out = self.model.predict(np.array([encode(c) for c in configs]))
        e = self.epochs
        return np.stack([np.clip(out[:, :e], 0.0, 1.0), 10 ** out[:, e:]], axis=2)

    def curve(self, cfg: Mapping) -> list[list[float]]:
        key = json.dumps(cfg, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = self.predict([cfg])[0].tolist()
        return self._cache[key]


def held_out_quality(rows: Sequence[Mapping], *, share: float = 0.2, seed: int = 0) -> dict[str, float]:
    """Fit on ``1 - share`` of the real evaluations, predict the rest: R² and Spearman's ρ of the
    final objective and of log MACs, and the share of held-out pairs whose Pareto dominance the
    surrogate gets right (what a multi-objective searcher comparison depends on)."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(rows))
    n_test = int(len(rows) * share)
    test, train = [rows[i] for i in order[:n_test]], [rows[i] for i in order[n_test:]]
    model = Surrogate(train, seed=seed)
    pred = model.predict([r["config"] for r in test])[:, -1, :]
    real = np.array([r["curve"][-1] for r in test], dtype=float)
    real[:, 0] = np.nan_to_num(real[:, 0], nan=0.0)
    out = {"train": len(train), "test": len(test)}
    for j, name in ((0, "objective"), (1, "log_macs")):
        a, b = real[:, j], pred[:, j]
        if j == 1:
            a, b = np.log10(np.maximum(a, 1.0)), np.log10(np.maximum(b, 1.0))
        out[f"r2_{name}"] = float(1 - ((a - b) ** 2).sum() / ((a - a.mean()) ** 2).sum())
        out[f"spearman_{name}"] = float(spearmanr(a, b).statistic)
    # dominance agreement over random held-out pairs: does p dominate q, q dominate p, or neither?
    i, j = rng.integers(0, len(test), 4000), rng.integers(0, len(test), 4000)

    def relation(v):
        better = (v[i, 0] >= v[j, 0]) & (v[i, 1] <= v[j, 1]) & ((v[i, 0] > v[j, 0]) | (v[i, 1] < v[j, 1]))
        worse = (v[j, 0] >= v[i, 0]) & (v[j, 1] <= v[i, 1]) & ((v[j, 0] > v[i, 0]) | (v[j, 1] < v[i, 1]))
        return better.astype(int) - worse.astype(int)

    out["dominance_agreement"] = float((relation(real) == relation(pred)).mean())
    return out
