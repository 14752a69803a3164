"""Training and evaluation loop for multi-task MoE networks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from gatesearch.models import MoENetwork, RouteContext
from gatesearch.objectives import checkpoint
from gatesearch.objectives.auc import mean_task_auc
from gatesearch.objectives.cost import DEFAULT_PROTOCOL, StepTimer, expert_load, measure_inference
from gatesearch.objectives.data import Dataset, Split
from gatesearch.objectives.metrics import (
    ACCURACY,
    ACTIVE_EXPERTS,
    AUC,
    EPOCH,
    MACS,
    TEST_ACCURACY,
    TEST_AUC,
    TRAIN_ACTIVE_EXPERTS,
    TRAIN_LOSS,
    TRAIN_MACS,
    TRAIN_STEP,
    VAL_LOSS,
    WEIGHT_SPARSITY,
    Report,
)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (Adam, as in COMET/DSelect-k).

    Attributes:
        epochs: passes over the training split.
        lr: Adam learning rate.
        batch_size: training batch size.
        weight_decay: Adam weight decay.
        seed: seeds parameter init, shuffling and gate noise.
    """

    epochs: int = 10
    lr: float = 1e-2
    batch_size: int = 64
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")

    def steps_per_epoch(self, n_train: int) -> int:
        return math.ceil(n_train / self.batch_size)


@torch.no_grad()
def evaluate(network: MoENetwork, split: Split, *, step: int, batch_size: int = 512,
             device: torch.device | str = "cpu") -> dict[str, float]:
    """Accuracy and ROC AUC (means over tasks), loss, and per-sample inference compute on ``split``."""
    was_training = network.training
    network.eval()
    n, correct, loss, macs, active, sparsity = len(split), 0.0, 0.0, 0.0, 0.0, 0.0
    n_tasks = split.y.shape[1]
    probs: list[list[np.ndarray]] = [[] for _ in range(n_tasks)]
    for start in range(0, n, batch_size):
        x = split.x[start : start + batch_size].to(device)
        y = split.y[start : start + batch_size].to(device)
        ids = split.ids[start : start + batch_size].to(device)
        b = x.shape[0]
        out = network(x, RouteContext(step=step, token_ids=ids))
        for t, logits in enumerate(out.logits):
            probs[t].append(logits.float().softmax(1).cpu().numpy())
            correct += (logits.argmax(1) == y[:, t]).float().sum().item() / n_tasks
            loss += F.cross_entropy(logits, y[:, t], reduction="sum").item() / n_tasks
        macs += out.macs_per_sample * b
        active += out.active_experts * b
        sparsity += sum(r.stats()["weight_sparsity"] for r in out.routings) / len(out.routings) * b
    network.train(was_training)
    auc = mean_task_auc([np.concatenate(p) for p in probs], split.y.numpy())
    return {ACCURACY.name: correct / n, VAL_LOSS.name: loss / n, MACS.name: macs / n, AUC.name: auc,
            ACTIVE_EXPERTS.name: active / n, WEIGHT_SPARSITY.name: sparsity / n}


def measure_cost(network: MoENetwork, split: Split, *, step: int, device: torch.device | str = "cpu") -> dict[str, float]:
    """Measured latency, peak memory and expert-load imbalance of ``network`` on the first
    ``DEFAULT_PROTOCOL.batch`` samples of ``split`` (:mod:`gatesearch.objectives.cost`)."""
    was_training = network.training
    network.eval()
    b = min(DEFAULT_PROTOCOL.batch, len(split))
    x, ids = split.x[:b].to(device), split.ids[:b].to(device)
    ctx = RouteContext(step=step, token_ids=ids)
    cost = measure_inference(lambda: network(x, ctx), b, device, module=network)
    with torch.no_grad():
        out = network(x, ctx)
    network.train(was_training)
    return {**cost, **expert_load([r.mask for r in out.routings])}


def train(network: MoENetwork, data: Dataset, config: TrainConfig, *, report: Report | None = None,
          device: torch.device | str = "cpu", restore: Mapping[str, Any] | None = None,
          save: Callable[[dict], None] | None = None) -> dict[str, float]:
    """Train with Adam; after every epoch evaluate on validation and call ``report``.

    Returns (and reports last) the final validation metrics plus ``test_accuracy``. A non-finite
    loss raises ``FloatingPointError`` (the trial fails loudly rather than reporting
    garbage). ``restore``: continue from a state :func:`~gatesearch.objectives.checkpoint.capture`
    made; ``save``: called with the training state after each epoch, before ``report``.
    """
    gen = torch.Generator().manual_seed(config.seed)
    network.to(device)
    opt = torch.optim.Adam([p for p in network.parameters() if p.requires_grad], lr=config.lr,
                           weight_decay=config.weight_decay)
    train_split, step, metrics, start = data.train, 0, {}, 0
    if restore is not None:
        start, step, _ = checkpoint.restore(restore, model=network, optimizers={"adam": opt}, generator=gen)
    n = len(train_split)
    for epoch in range(start + 1, config.epochs + 1):
        network.train()
        order = torch.randperm(n, generator=gen)
        total = train_active = train_macs = 0.0
        timer, steps_before = StepTimer(device), step
        timer.start()
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            x, y = train_split.x[idx].to(device), train_split.y[idx].to(device)
            ids = train_split.ids[idx].to(device)
            network.advance(step)
            out = network(x, RouteContext(step=step, token_ids=ids))
            task_loss = sum(F.cross_entropy(lg, y[:, t]) for t, lg in enumerate(out.logits)) / len(out.logits)
            loss = task_loss + out.aux_loss()
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at epoch {epoch}, step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
            train_active += out.active_experts * idx.numel()
            train_macs += out.macs_per_sample * idx.numel()
            step += 1
        step_ms = timer.stop(step - steps_before)
        metrics = evaluate(network, data.val, step=step, device=device)
        metrics.update(measure_cost(network, data.val, step=step, device=device))
        metrics[TRAIN_STEP.name] = step_ms
        metrics[TRAIN_LOSS.name] = total / n
        metrics[TRAIN_ACTIVE_EXPERTS.name] = train_active / n
        metrics[TRAIN_MACS.name] = train_macs / n
        metrics[EPOCH.name] = epoch
        if epoch == config.epochs:  # the last report carries the held-out test accuracy
            test = evaluate(network, data.test, step=step, device=device)
            metrics[TEST_ACCURACY.name], metrics[TEST_AUC.name] = test[ACCURACY.name], test[AUC.name]
        if save is not None:
            save(checkpoint.capture(epoch=epoch, step=step, model=network, optimizers={"adam": opt}, generator=gen))
        if report is not None:
            report(dict(metrics))
    return metrics
