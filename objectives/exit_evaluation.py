"""Evaluating an early-exit network: gated exits, threshold exits chosen on validation (per-exit
confidence thresholds for a budget sweep), and their accuracy, MACs, calibration and conformal sets."""

from __future__ import annotations

import numpy as np
import torch

from gatesearch.models import EarlyExitNetwork, first_exit
from gatesearch.objectives.calibration import expected_calibration_error
from gatesearch.objectives.conformal import split_conformal
from gatesearch.objectives.data import Dataset, Split
from gatesearch.objectives.exit_options import CONFIDENCES
from gatesearch.objectives.metrics import (
    ACCURACY,
    COVERAGE,
    ECE,
    EXIT_FRACTION_PREFIX,
    MACS,
    SET_SIZE,
)


@torch.no_grad()
def _forward_all(net: EarlyExitNetwork, split: Split, device) -> tuple[list[np.ndarray], np.ndarray | None]:
    net.eval()
    logits, probs = [], []
    for start in range(0, len(split), 1024):
        out = net(split.x[start : start + 1024].to(device))
        logits.append([lg.float().cpu() for lg in out.logits])
        if out.exit_probs is not None:
            probs.append(out.exit_probs.cpu())
    per_exit = [torch.cat([b[l] for b in logits]).numpy() for l in range(net.n_exits)]
    return per_exit, (torch.cat(probs).numpy() if probs else None)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def exit_metrics(probs_at_exit: np.ndarray, y: np.ndarray, exits: np.ndarray, costs: np.ndarray) -> dict[str, float]:
    correct = probs_at_exit.argmax(1) == y
    return {ACCURACY.name: float(correct.mean()), MACS.name: float(costs[exits].mean()),
            ECE.name: expected_calibration_error(probs_at_exit.max(1), correct)}


@torch.no_grad()
def gated_exits(net: EarlyExitNetwork, split: Split, device, threshold: float | None = None):
    """(per-exit logits, exit index per row) of a JEI-DNN network on ``split``."""
    logits, p = _forward_all(net, split, device)
    thr = net.config.exit_threshold if threshold is None else threshold
    return logits, first_exit(torch.from_numpy(p), thr).numpy()


def evaluate_gated(net: EarlyExitNetwork, data: Dataset, device, threshold: float | None = None,
                   split: str = "val") -> dict[str, float]:
    """Exit-aware metrics of the JEI-DNN inference rule on ``split`` (conformal sets calibrated
    on validation, per exit)."""
    costs = np.array(net.exit_costs())
    val_logits, val_exits = gated_exits(net, data.val, device, threshold)
    logits, exits = (val_logits, val_exits) if split == "val" else gated_exits(net, data.test, device, threshold)
    target = (data.val if split == "val" else data.test).y[:, 0].numpy()
    probs = _softmax(np.stack(logits, 1)[np.arange(len(exits)), exits])
    out = exit_metrics(probs, target, exits, costs)
    val_probs = _softmax(np.stack(val_logits, 1)[np.arange(len(val_exits)), val_exits])
    conf = split_conformal(val_probs, data.val.y[:, 0].numpy(), probs, target, alpha=0.05, cal_groups=val_exits,
                           test_groups=exits)
    out[COVERAGE.name], out[SET_SIZE.name] = conf["coverage"], conf["set_size"]
    for l in range(net.n_exits):
        out[f"{EXIT_FRACTION_PREFIX}{l + 1}"] = float((exits == l).mean())
    return out


#: exit thresholds of JEI-DNN's post-hoc sweep: 0.05, 0.10, ..., 0.95
SWEEP_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def threshold_sweep(net: EarlyExitNetwork, data: Dataset, device,
                    thresholds: tuple[float, ...] = SWEEP_THRESHOLDS) -> list[dict[str, float]]:
    """Operating points of one trained JEI-DNN network at several exit thresholds (one forward
    pass per split): validation and test accuracy and expected MACs for each threshold. A higher
    threshold exits later, so MACs do not decrease along the list."""
    costs = np.array(net.exit_costs())
    splits = {"val": data.val, "test": data.test}
    fwd = {name: _forward_all(net, split, device) for name, split in splits.items()}
    points = []
    for t in thresholds:
        point: dict[str, float] = {"exit_threshold": t}
        for name, split in splits.items():
            logits, p = fwd[name]
            exits = first_exit(torch.from_numpy(p), t).numpy()
            probs = _softmax(np.stack(logits, 1)[np.arange(len(exits)), exits])
            m = exit_metrics(probs, split.y[:, 0].numpy(), exits, costs)
            prefix = "" if name == "val" else "test_"
            point[prefix + ACCURACY.name], point[prefix + MACS.name] = m[ACCURACY.name], m[MACS.name]
        points.append(point)
    return points


def confidence(logits: np.ndarray, kind: str) -> np.ndarray:
    """Higher = more confident: max softmax, negative entropy, or top-1 − top-2 margin."""
    p = _softmax(logits)
    if kind == "max_softmax":
        return p.max(1)
    if kind == "entropy":
        return (p * np.log(np.clip(p, 1e-12, None))).sum(1)
    if kind == "margin":
        top = np.sort(p, axis=1)
        return top[:, -1] - top[:, -2]
    raise ValueError(f"confidence must be one of {CONFIDENCES}, got {kind!r}")


def thresholds_for_prior(conf: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """MSDNet protocol on validation: per exit k (but the last), the threshold T_k that lets the
    n·Σ_{j<=k} π_j most confident remaining samples have exited by exit k (cumulative rounding,
    so the counts shift monotonically with the prior)."""
    n, n_exits = conf.shape
    remaining = np.ones(n, bool)
    target = np.round(n * np.cumsum(prior)).astype(int)
    thresholds, done = np.full(n_exits, np.inf), 0
    for k in range(n_exits - 1):
        take = max(0, target[k] - done)
        idx = np.flatnonzero(remaining)
        if take > 0 and len(idx):
            order = idx[np.argsort(-conf[idx, k], kind="stable")][:take]
            thresholds[k] = conf[order[-1], k]
            chosen = remaining & (conf[:, k] >= thresholds[k])
            done += int(chosen.sum())
            remaining &= ~chosen
    thresholds[-1] = -np.inf
    return thresholds


def threshold_exits(conf: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    hit = conf >= thresholds[None, :]
    hit[:, -1] = True
    return hit.argmax(1)


def budget_sweep(net: EarlyExitNetwork, data: Dataset, device, kind: str = "max_softmax") -> list[dict[str, float]]:
    """Operating points for q = p/20, p = 1..39 (exit prior π_k ∝ q^k): thresholds chosen on
    validation, metrics on validation and test. Sorted by q (more compute as q grows)."""
    costs = np.array(net.exit_costs())
    val_logits, _ = _forward_all(net, data.val, device)
    test_logits, _ = _forward_all(net, data.test, device)
    val_conf = np.stack([confidence(z, kind) for z in val_logits], 1)
    test_conf = np.stack([confidence(z, kind) for z in test_logits], 1)
    yv, yt = data.val.y[:, 0].numpy(), data.test.y[:, 0].numpy()
    points = []
    for p in range(1, 40):
        q = p / 20
        prior = q ** np.arange(1, net.n_exits + 1)
        prior = prior / prior.sum()
        thr = thresholds_for_prior(val_conf, prior)
        ev, et = threshold_exits(val_conf, thr), threshold_exits(test_conf, thr)
        pv = _softmax(np.stack(val_logits, 1)[np.arange(len(ev)), ev])
        pt = _softmax(np.stack(test_logits, 1)[np.arange(len(et)), et])
        mv, mt = exit_metrics(pv, yv, ev, costs), exit_metrics(pt, yt, et, costs)
        points.append({"q": q, "accuracy": mv[ACCURACY.name], "macs_per_sample": mv[MACS.name],
                       "test_accuracy": mt[ACCURACY.name], "test_macs_per_sample": mt[MACS.name],
                       "ece": mv[ECE.name], "thresholds": [float(t) for t in thr]})
    return points
