"""Training and evaluation loop of the transformer language models.

An *epoch* here is ``steps_per_epoch`` optimisation steps, each on ``batch_size`` windows of
``context + 1`` tokens drawn at uniformly random positions of the training stream (so tokens per
epoch = steps_per_epoch·batch_size·context, whatever the corpus size). AdamW (β = 0.9, 0.95),
linear warm-up over the first ``warmup_fraction`` of the steps then cosine decay to 0.1·lr,
gradient clipping at 1.0 (GPT-2/nanoGPT practice). On CUDA the forward runs under bf16 autocast
where the GPU supports it.

Evaluation: ``eval_tokens // context`` non-overlapping windows of ``context`` tokens, every position
scored, drawn once (fixed positions, :data:`EVAL_SEED`, the same for every trial and epoch) from all
the window slots of the split, so they are spread over the whole held-out text (both validation
plays), not its opening; the whole split when ``eval_tokens`` covers it. The metric is bits per
character = mean cross-entropy / ln 2, with its standard error over the windows (``val_bpc_se``:
sd of the per-window bpc / √windows, with the finite-population correction), and the inference
compute is the model's MACs per token in eval mode at sequence length ``context``.
"""

from __future__ import annotations

import math
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from gatesearch.models.gates.local_search import PermutationLocalSearch
from gatesearch.models.gates.topk import TopKGate
from gatesearch.models.transformer import MoETransformerLM
from gatesearch.objectives import checkpoint
from gatesearch.objectives.cost import StepTimer, expert_load, measure_inference
from gatesearch.objectives.metrics import (
    ACTIVE_EXPERTS,
    BPC,
    BPC_SE,
    DROPPED_FRACTION,
    EPOCH,
    LATENCY,
    LATENCY_TOKEN,
    MACS_PER_TOKEN,
    PEAK_MEMORY,
    TEST_BPC,
    TRAIN_ACTIVE_EXPERTS,
    TRAIN_LOSS,
    TRAIN_STEP,
    VAL_LOSS,
    Report,
)


@dataclass(frozen=True)
class LMTrainConfig:
    """Attributes:
        epochs: reporting periods of ``steps_per_epoch`` steps each.
        steps_per_epoch: optimisation steps per epoch.
        batch_size: windows per step.
        context: tokens per window (the model's T).
        lr, weight_decay: AdamW.
        warmup_fraction: share of all steps with a linear warm-up.
        eval_tokens: tokens of the validation/test split scored per evaluation.
        seed: seeds initialisation, window sampling and gate noise.
    """

    epochs: int = 4
    steps_per_epoch: int = 100
    batch_size: int = 32
    context: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.05
    eval_tokens: int = 32768
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.epochs, self.steps_per_epoch, self.batch_size, self.context, self.eval_tokens) < 1:
            raise ValueError("epochs, steps_per_epoch, batch_size, context and eval_tokens must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)) or not 0 <= self.warmup_fraction < 1:
            raise ValueError("lr must be positive and finite, warmup_fraction in [0, 1)")

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lr_at(self, step: int) -> float:
        """Linear warm-up to lr, then cosine to 0.1·lr at the last step."""
        warm = max(1, int(self.warmup_fraction * self.total_steps))
        if step < warm:
            return self.lr * (step + 1) / warm
        frac = (step - warm) / max(1, self.total_steps - warm)
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def random_windows(tokens: Tensor, batch: int, context: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``batch`` windows at random positions: inputs ``(batch, context)``, next-token targets."""
    start = torch.randint(0, len(tokens) - context - 1, (batch,), generator=gen)
    idx = start[:, None] + torch.arange(context + 1)[None, :]
    w = tokens[idx]
    return w[:, :-1], w[:, 1:]


def _autocast(device: torch.device):
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def evaluate_lm(model: MoETransformerLM, tokens: Tensor, *, context: int, max_tokens: int, step: int,
                device: torch.device | str = "cpu", batch_size: int = 64) -> dict[str, float]:
    """Bits per character, loss, MACs per token, active experts and dropped share on ``tokens``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    starts = eval_windows(len(tokens), context, max_tokens)
    n_windows = len(starts)
    total, count, macs, active, dropped = 0.0, 0, 0.0, 0.0, 0.0
    per_window: list[Tensor] = []
    for i in range(0, n_windows, batch_size):
        s = starts[i: i + batch_size]
        w = tokens[s[:, None] + torch.arange(context + 1)[None, :]].to(device)
        with _autocast(device):
            out = model(w[:, :-1], step=step)
        ce = F.cross_entropy(out.logits.float().reshape(-1, out.logits.shape[-1]), w[:, 1:].reshape(-1),
                             reduction="none").reshape(len(s), context)
        per_window.append(ce.mean(dim=1).cpu())
        loss = ce.sum()
        n = w[:, 1:].numel()
        total, count = total + loss.item(), count + n
        macs += out.macs_per_token * n
        active += out.active_experts * n
        dropped += (sum(r.dropped_fraction for r in out.routings) / len(out.routings) if out.routings else 0.0) * n
    model.train(was_training)
    loss = total / count
    # the standard error of the mean over the windows (every window has `context` tokens), with the
    # finite-population correction: 0 when every window slot of the split is scored
    slots = max(1, (len(tokens) - 1) // context)
    windows = torch.cat(per_window).double()
    fpc = math.sqrt(max(0.0, (slots - n_windows) / max(1, slots - 1)))
    se = float(windows.std(unbiased=True)) / math.sqrt(n_windows) * fpc if n_windows > 1 else float("nan")
    return {VAL_LOSS.name: loss, BPC.name: loss / math.log(2), BPC_SE.name: se / math.log(2),
            MACS_PER_TOKEN.name: macs / count, ACTIVE_EXPERTS.name: active / count,
            DROPPED_FRACTION.name: dropped / count}


#: seeds the evaluation windows' positions (fixed: every trial and epoch scores the same windows)
EVAL_SEED = 20231


def eval_windows(n_tokens: int, context: int, max_tokens: int) -> Tensor:
    """Start positions of the evaluation windows of a split of ``n_tokens`` tokens: ``max_tokens //
    context`` of its ``(n_tokens - 1) // context`` non-overlapping window slots (at least one),
    drawn without replacement with :data:`EVAL_SEED` and sorted, so they are spread over the whole
    split; every slot when ``max_tokens`` covers the split."""
    slots = max(1, (n_tokens - 1) // context)
    n = max(1, min(slots, max_tokens // context))
    if n == slots:
        chosen = torch.arange(slots)
    else:
        chosen = torch.randperm(slots, generator=torch.Generator().manual_seed(EVAL_SEED))[:n].sort().values
    return chosen * context


def top_k_gates(model: MoETransformerLM) -> list[TopKGate]:
    """The Top-k gates of the model's MoE layers (under any local-search wrapper)."""
    gates = []
    for ffn in model.moe_layers:
        g = ffn.gate.gate if isinstance(ffn.gate, PermutationLocalSearch) else ffn.gate
        if isinstance(g, TopKGate):
            gates.append(g)
    return gates


@contextmanager
def inference_k(model: MoETransformerLM, k: int) -> Iterator[None]:
    """Route with ``k`` experts per token in every Top-k gate (a post-hoc sweep of one trained
    model); the trained k is restored on exit."""
    gates = top_k_gates(model)
    saved = [g.k for g in gates]
    try:
        for g in gates:
            g.k = min(k, g.n_experts)
        yield
    finally:
        for g, k0 in zip(gates, saved):
            g.k = k0


#: windows of the fixed batch the measured cost is taken on (objectives/cost.py)
COST_WINDOWS = 16


def measure_lm_cost(model: MoETransformerLM, tokens: Tensor, *, context: int, step: int,
                    device: torch.device | str = "cpu") -> dict[str, float]:
    """Measured latency per token, peak memory and expert-load imbalance of ``model`` on the first
    :data:`COST_WINDOWS` evaluation windows of ``tokens`` (:mod:`gatesearch.objectives.cost`)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    starts = eval_windows(len(tokens), context, COST_WINDOWS * context)[:COST_WINDOWS]
    w = tokens[starts[:, None] + torch.arange(context)[None, :]].to(device)

    def call():
        with _autocast(device):
            return model(w, step=step)

    cost = measure_inference(call, w.numel(), device, module=model)
    with torch.no_grad():
        out = call()
    model.train(was_training)
    return {LATENCY_TOKEN.name: cost[LATENCY.name], PEAK_MEMORY.name: cost[PEAK_MEMORY.name],
            **expert_load([r.mask for r in out.routings])}


def train_lm(model: MoETransformerLM, corpus, config: LMTrainConfig, *, report: Report | None = None,
             device: torch.device | str = "cpu",
             final: Callable[[MoETransformerLM, int], dict] | None = None,
             restore: Mapping[str, Any] | None = None, save: Callable[[dict], None] | None = None) -> dict[str, float]:
    """Train; after every epoch evaluate on validation and call ``report``. The last report also
    carries ``test_bpc`` and whatever ``final(model, step)`` adds (e.g. operating points). A
    non-finite loss raises ``FloatingPointError``."""
    device = torch.device(device)
    gen = torch.Generator().manual_seed(config.seed)
    model.to(device)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.95))
    step, metrics, start = 0, {}, 0
    if restore is not None:  # a checkpointed trial continues after its last epoch
        start, step, _ = checkpoint.restore(restore, model=model, optimizers={"adamw": opt}, generator=gen)
    for epoch in range(start + 1, config.epochs + 1):
        model.train()
        total = train_active = 0.0
        timer = StepTimer(device)
        timer.start()
        for _ in range(config.steps_per_epoch):
            x, y = random_windows(corpus.train, config.batch_size, config.context, gen)
            if device.type == "cuda":  # page-locked host memory: the copy overlaps the previous step
                x, y = x.pin_memory(), y.pin_memory()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            model.advance(step)
            for group in opt.param_groups:
                group["lr"] = config.lr_at(step)
            with _autocast(device):
                out = model(x, step=step)
                loss = F.cross_entropy(out.logits.float().reshape(-1, out.logits.shape[-1]), y.reshape(-1)) + out.aux_loss
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at epoch {epoch}, step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += loss.item()
            train_active += out.active_experts
            step += 1
        step_ms = timer.stop(config.steps_per_epoch)
        metrics = evaluate_lm(model, corpus.val, context=config.context, max_tokens=config.eval_tokens, step=step,
                              device=device)
        metrics.update(measure_lm_cost(model, corpus.val, context=config.context, step=step, device=device))
        metrics[TRAIN_STEP.name] = step_ms
        metrics[TRAIN_LOSS.name] = total / config.steps_per_epoch
        metrics[TRAIN_ACTIVE_EXPERTS.name] = train_active / config.steps_per_epoch
        metrics[EPOCH.name] = epoch
        if epoch == config.epochs:
            test = evaluate_lm(model, corpus.test, context=config.context, max_tokens=config.eval_tokens, step=step,
                               device=device)
            metrics[TEST_BPC.name] = test[BPC.name]
            if final is not None:
                metrics.update(final(model, step))
        if save is not None:
            save(checkpoint.capture(epoch=epoch, step=step, model=model, optimizers={"adamw": opt}, generator=gen))
        if report is not None:
            report(dict(metrics))
    return metrics


def k_sweep(model: MoETransformerLM, corpus, config: LMTrainConfig, step: int, device, ks: list[int]) -> list[dict]:
    """Operating points of one trained model at several inference k (Top-k gates only):
    validation and test bits per character and MACs per token for each k."""
    points = []
    for k in ks:
        with inference_k(model, k):
            val = evaluate_lm(model, corpus.val, context=config.context, max_tokens=config.eval_tokens, step=step,
                              device=device)
            test = evaluate_lm(model, corpus.test, context=config.context, max_tokens=config.eval_tokens, step=step,
                               device=device)
        points.append({"k": k, BPC.name: val[BPC.name], MACS_PER_TOKEN.name: val[MACS_PER_TOKEN.name],
                       TEST_BPC.name: test[BPC.name]})
    return points
