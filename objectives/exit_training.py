"""Training and evaluation of early-exit networks: JEI-DNN and the confidence-threshold baseline.

Schedule (JEI-DNN, adapted to a backbone trained here rather than a frozen pre-trained one):
1. warm-up (``warmup_epochs``): backbone + every IM with L = CE_L + Σ_{l<L} (G + 1 − l)·CE_l
   (G = L − 1 gates; earlier IMs weigh more), Adam;
2. then the backbone is frozen and GATE / CLASSIFIER phases alternate every ``alternate_every``
   batches (starting with GATE):
   - gate phase — surrogate targets: l* = argmin_l CE_l + λ·C_l / C_L, t_l = 1[l >= l*]; loss =
     BCEWithLogits(gate_logit_l, t_l) with positive weight pw_l = min((N − c_l) / max(c_l, 0.1), 5),
     c_l = number of validation samples whose optimal exit is l (refreshed after every epoch);
   - classifier phase — L = mean_b Σ_l P_l·CE_l·ρ_b with gates under no_grad and
     ρ_b = Σ_l CE_l / Σ_l P_l·CE_l. **Decision on the spec's note**: the released code does not
     detach ρ, which makes value and gradient equal to plain Σ_l CE_l (P has no effect). We
     detach ρ (``im_loss="weighted"``): the loss keeps the scale of Σ_l CE_l per sample while the
     gradient is P-weighted, which is what the rescaling was evidently meant to do. The released
     behaviour is available as ``im_loss="plain"``.
The threshold baseline trains only step 1 (all epochs) and chooses per-exit thresholds on
validation for a whole budget sweep (:func:`budget_sweep`), so one trained backbone yields an
accuracy-vs-MACs curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from gatesearch.models import EarlyExitNetwork, first_exit, per_exit_ce
from gatesearch.objectives import checkpoint
from gatesearch.objectives.calibration import expected_calibration_error
from gatesearch.objectives.conformal import split_conformal
from gatesearch.objectives.data import Dataset, Split
from gatesearch.objectives.exit_options import CONFIDENCES, IM_LOSSES  # noqa: F401 - re-exported
from gatesearch.objectives.metrics import (
    ACCURACY,
    COVERAGE,
    ECE,
    EXIT_FRACTION_PREFIX,
    MACS,
    SET_SIZE,
    VAL_LOSS,
    Report,
)


@dataclass(frozen=True)
class ExitTrainConfig:
    epochs: int = 10
    warmup_epochs: int = 4
    lr: float = 3e-3
    gate_lr: float = 0.05
    batch_size: int = 64
    lambda_cost: float = 0.5
    alternate_every: int = 20
    im_loss: str = "weighted"
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.warmup_epochs <= self.epochs:
            raise ValueError("need 1 <= warmup_epochs <= epochs")
        if self.im_loss not in IM_LOSSES:
            raise ValueError(f"im_loss must be one of {IM_LOSSES}")
        if self.lambda_cost < 0 or self.alternate_every < 1 or self.lr <= 0 or self.gate_lr <= 0:
            raise ValueError("lambda_cost >= 0, alternate_every >= 1, lr > 0")


def warmup_loss(logits: list[torch.Tensor], y: torch.Tensor) -> torch.Tensor:
    """CE_L + Σ_{l<L} (G + 1 − l)·CE_l, l 1-based, G = L − 1."""
    ce = per_exit_ce(logits, y).mean(dim=0)
    g = len(logits) - 1
    weights = torch.tensor([g + 1 - l for l in range(1, g + 1)] + [1], dtype=ce.dtype, device=ce.device)
    return (weights * ce).sum()


def optimal_exits(ce: torch.Tensor, costs: torch.Tensor, lam: float) -> torch.Tensor:
    """l* = argmin_l CE_l + λ·C_l / C_L per row (0-based)."""
    return (ce + lam * costs / costs[-1]).argmin(dim=1)


def gate_loss(gate_logits: torch.Tensor, lstar: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """BCE of gate l against t_l = 1[l >= l*] (exit here or at any later gate is fine)."""
    l_idx = torch.arange(gate_logits.shape[1], device=gate_logits.device)
    targets = (l_idx[None, :] >= lstar[:, None]).to(gate_logits.dtype)
    return F.binary_cross_entropy_with_logits(gate_logits, targets, pos_weight=pos_weight)


def im_loss(logits: list[torch.Tensor], exit_probs: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    ce = per_exit_ce(logits, y)  # (B, L)
    if mode == "plain":
        return ce.sum(dim=1).mean()
    p = exit_probs.detach()
    rho = (ce.sum(dim=1) / (p * ce).sum(dim=1).clamp_min(1e-8)).detach()  # detached: see module doc
    return ((p * ce).sum(dim=1) * rho).mean()


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


def train_early_exit(net: EarlyExitNetwork, data: Dataset, cfg: ExitTrainConfig, *, jei: bool,
                     report: Report | None = None, device="cpu",
                     evaluate: Callable[[EarlyExitNetwork, int], dict[str, float]] | None = None,
                     restore: Mapping[str, Any] | None = None,
                     save: Callable[[dict], None] | None = None) -> dict[str, float]:
    """Warm-up, then (``jei``) alternating gate/classifier phases; ``evaluate(net, epoch)`` is
    reported after every epoch. Raises FloatingPointError on a non-finite loss. ``restore``/``save``:
    per-epoch training state (:mod:`~gatesearch.objectives.checkpoint`; the alternation counter and
    the gates' positive weights travel in it)."""
    gen = torch.Generator().manual_seed(cfg.seed)
    net.to(device)
    costs = torch.tensor(net.exit_costs(), device=device)
    warm_opt = torch.optim.Adam(net.backbone_parameters() + net.im_parameters(), lr=cfg.lr)
    im_opt = torch.optim.Adam(net.im_parameters(), lr=cfg.lr)
    gate_opt = torch.optim.Adam(net.gate_parameters(), lr=cfg.gate_lr) if jei else None
    n_gates = net.n_exits - 1
    pos_weight = torch.ones(n_gates, device=device)
    train, metrics, batch_no, start = data.train, {}, 0, 0
    optimizers = {"warm": warm_opt, "im": im_opt, **({"gate": gate_opt} if gate_opt is not None else {})}
    if restore is not None:
        start, _, extra = checkpoint.restore(restore, model=net, optimizers=optimizers, generator=gen)
        batch_no, pos_weight = int(extra["batch_no"]), extra["pos_weight"].to(device)
    for epoch in range(start + 1, cfg.epochs + 1):
        net.train()
        warm = epoch <= cfg.warmup_epochs or not jei
        if not warm:
            for p in net.backbone_parameters():
                p.requires_grad_(False)
        order = torch.randperm(len(train), generator=gen)
        total = 0.0
        for start in range(0, len(train), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            x, y = train.x[idx].to(device), train.y[idx, 0].to(device)
            out = net(x)
            if warm:
                loss, opt = warmup_loss(out.logits, y), warm_opt
            elif (batch_no // cfg.alternate_every) % 2 == 0:  # GATE phase first
                lstar = optimal_exits(per_exit_ce(out.logits, y).detach(), costs, cfg.lambda_cost)
                loss, opt = gate_loss(out.gate_logits, lstar, pos_weight), gate_opt
            else:
                loss, opt = im_loss(out.logits, out.exit_probs, y, cfg.im_loss), im_opt
            if not warm:
                batch_no += 1
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at epoch {epoch}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        with torch.no_grad():  # one validation pass: the loss, and the gates' positive weights
            net.eval()
            val_ce = per_exit_ce(net(data.val.x.to(device)).logits, data.val.y[:, 0].to(device))
        if jei:  # refresh the gate positive weights from the validation optimal exits
            lstar = optimal_exits(val_ce, costs, cfg.lambda_cost)
            counts = torch.bincount(lstar, minlength=net.n_exits)[:n_gates].float()
            pos_weight = ((len(lstar) - counts) / counts.clamp_min(0.1)).clamp(max=5.0)
        metrics = dict(evaluate(net, epoch)) if evaluate else {}
        metrics[VAL_LOSS.name] = float(val_ce.mean().item())
        metrics["train_loss"], metrics["epoch"] = total / len(train), epoch
        if save is not None:
            save(checkpoint.capture(epoch=epoch, step=batch_no, model=net, optimizers=optimizers, generator=gen,
                                    extra={"batch_no": batch_no, "pos_weight": pos_weight.detach().cpu()}))
        if report is not None:
            report(dict(metrics))
    return metrics
