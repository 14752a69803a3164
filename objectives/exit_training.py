"""Training early-exit networks: JEI-DNN and the confidence-threshold baseline (the losses are
:mod:`~gatesearch.objectives.exit_losses`', the evaluation :mod:`~gatesearch.objectives.exit_evaluation`').

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

import torch

from gatesearch.models import EarlyExitNetwork, per_exit_ce
from gatesearch.objectives import checkpoint
from gatesearch.objectives.cost import DEFAULT_PROTOCOL, StepTimer, measure_inference
from gatesearch.objectives.data import Dataset
from gatesearch.objectives.exit_losses import gate_loss, im_loss, optimal_exits, warmup_loss
from gatesearch.objectives.exit_options import IM_LOSSES
from gatesearch.objectives.metrics import FROZEN_IMS, TRAIN_STEP, VAL_LOSS, Report


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
    #: released dynn behaviour (t2t_vit.py:118-129): after each epoch of the gate/classifier
    #: phase, an IM whose validation accuracy did not improve on its best is frozen for good; once
    #: every IM is frozen, only the gates train
    freeze_ims: bool = False
    #: released dynn behaviour (our_train_helper.py:47-53): every epoch restarts the alternation
    #: with a GATE phase (False: the batch counter runs on across epochs)
    reset_alternation: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.warmup_epochs <= self.epochs:
            raise ValueError("need 1 <= warmup_epochs <= epochs")
        if self.im_loss not in IM_LOSSES:
            raise ValueError(f"im_loss must be one of {IM_LOSSES}")
        if self.lambda_cost < 0 or self.alternate_every < 1 or self.lr <= 0 or self.gate_lr <= 0:
            raise ValueError("lambda_cost >= 0, alternate_every >= 1, lr > 0")


def measure_exit_cost(net: EarlyExitNetwork, split, device="cpu") -> dict[str, float]:
    """Measured latency per sample and peak memory of ``net``'s deployed inference
    (:meth:`~gatesearch.models.early_exit.EarlyExitNetwork.infer`: each row stops at its exit, so the
    exits' saving shows) on the first ``DEFAULT_PROTOCOL.batch`` validation samples
    (:mod:`gatesearch.objectives.cost`). A network without gates runs every row to the last exit."""
    was_training = net.training
    net.eval()
    x = split.x[:DEFAULT_PROTOCOL.batch].to(device)
    cost = measure_inference(lambda: net.infer(x), len(x), device, module=net)
    net.train(was_training)
    return cost


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
    # IM freezing (freeze_ims): each IM's best validation accuracy in the gate/classifier phase
    frozen = torch.zeros(net.n_exits, dtype=torch.bool)
    best_acc = torch.full((net.n_exits,), -1.0)
    optimizers = {"warm": warm_opt, "im": im_opt, **({"gate": gate_opt} if gate_opt is not None else {})}
    if restore is not None:
        start, _, extra = checkpoint.restore(restore, model=net, optimizers=optimizers, generator=gen)
        batch_no, pos_weight = int(extra["batch_no"]), extra["pos_weight"].to(device)
        frozen = extra.get("frozen_ims", frozen).bool().cpu()
        best_acc = extra.get("best_im_accuracy", best_acc).float().cpu()
    for epoch in range(start + 1, cfg.epochs + 1):
        net.train()
        warm = epoch <= cfg.warmup_epochs or not jei
        if not warm:
            for p in net.backbone_parameters():
                p.requires_grad_(False)
            for i, im in enumerate(net.ims):
                for p in im.parameters():
                    p.requires_grad_(not bool(frozen[i]))
            if cfg.reset_alternation:
                batch_no = 0
        order = torch.randperm(len(train), generator=gen)
        total, steps, timer = 0.0, 0, StepTimer(device)
        timer.start()
        for start in range(0, len(train), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            x, y = train.x[idx].to(device), train.y[idx, 0].to(device)
            out = net(x)
            if warm:
                loss, opt = warmup_loss(out.logits, y), warm_opt
            elif (batch_no // cfg.alternate_every) % 2 == 0 or bool(frozen.all()):  # GATE phase first
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
            steps += 1
        step_ms = timer.stop(steps)
        with torch.no_grad():  # one validation pass: the loss, the gates' positive weights, IM accuracies
            net.eval()
            val_out, val_y = net(data.val.x.to(device)), data.val.y[:, 0].to(device)
            val_ce = per_exit_ce(val_out.logits, val_y)
            im_acc = torch.stack([(lg.argmax(dim=1) == val_y).float().mean() for lg in val_out.logits]).cpu()
        if jei and not warm and cfg.freeze_ims:  # released: an IM that stopped improving is frozen
            frozen |= im_acc <= best_acc
            best_acc = torch.maximum(best_acc, im_acc)
        if jei:  # refresh the gate positive weights from the validation optimal exits
            lstar = optimal_exits(val_ce, costs, cfg.lambda_cost)
            counts = torch.bincount(lstar, minlength=net.n_exits)[:n_gates].float()
            pos_weight = ((len(lstar) - counts) / counts.clamp_min(0.1)).clamp(max=5.0)
        metrics = dict(evaluate(net, epoch)) if evaluate else {}
        metrics[VAL_LOSS.name] = float(val_ce.mean().item())
        metrics.update(measure_exit_cost(net, data.val, device))
        metrics[TRAIN_STEP.name] = step_ms
        metrics["train_loss"], metrics["epoch"] = total / len(train), epoch
        if jei and cfg.freeze_ims:
            metrics[FROZEN_IMS.name] = int(frozen.sum())
        if save is not None:
            save(checkpoint.capture(epoch=epoch, step=batch_no, model=net, optimizers=optimizers, generator=gen,
                                    extra={"batch_no": batch_no, "pos_weight": pos_weight.detach().cpu(),
                                           "frozen_ims": frozen.clone(), "best_im_accuracy": best_acc.clone()}))
        if report is not None:
            report(dict(metrics))
    return metrics
