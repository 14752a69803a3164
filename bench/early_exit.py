"""Benchmark: JEI-DNN vs the confidence-threshold baseline (accuracy vs expected MACs).

For each data set: JEI-DNN trained once per λ (the paper's trade-off knob; one model per point)
and the threshold baseline trained once, its whole budget sweep read off that one backbone.
Test accuracy, expected test MACs (exit-aware), ECE and split-conformal coverage/set size at
α = 0.05 (JEI-DNN). Same backbone size, epochs and seed for both.

    python bench/early_exit.py [--fashion-train 12000] [--epochs 8] [--backbone mlp|vit]

``--backbone vit``: the same comparison on Fashion-MNIST with the early-exit ViT
(:mod:`gatesearch.models.vit`, the defaults of ``early_exit_vit_fashion``: 4 blocks, width 32,
7-px patches, an exit on the CLS token after every block).

Writes bench/results/early_exit[_vit].{md,png}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins

from gatesearch.models import EarlyExitConfig, EarlyExitNetwork  # noqa: E402
from gatesearch.models.vit import EarlyExitViT, ViTExitConfig  # noqa: E402
from gatesearch.objectives.data import DataMissing, load_digits, load_fashion_mnist  # noqa: E402
from gatesearch.objectives.exit_evaluation import budget_sweep, evaluate_gated  # noqa: E402
from gatesearch.objectives.exit_training import ExitTrainConfig, train_early_exit  # noqa: E402

LAMBDAS = (0.01, 0.1, 0.3, 1.0, 3.0, 7.0)


def network(data, hidden: int, gated: bool, backbone: str):
    if backbone == "vit":
        side = int(round(data.d_in ** 0.5))
        return EarlyExitViT(ViTExitConfig(n_blocks=4), image=(1, side, side), n_classes=data.n_classes[0], gated=gated)
    return EarlyExitNetwork(EarlyExitConfig(n_blocks=4, hidden=hidden), d_in=data.d_in, n_classes=data.n_classes[0],
                            gated=gated)


def run(data, hidden: int, epochs: int, warmup: int, lr: float, batch: int, backbone: str = "mlp"):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    rows = []
    base = network(data, hidden, False, backbone)
    t0 = time.time()
    train_early_exit(base, data, ExitTrainConfig(epochs=epochs, warmup_epochs=epochs, lr=lr, batch_size=batch),
                     jei=False)
    sweep = budget_sweep(base, data, "cpu", "max_softmax")
    print(f"threshold baseline: {time.time() - t0:.0f} s", flush=True)
    for lam in LAMBDAS:
        torch.manual_seed(0)
        net = network(data, hidden, True, backbone)
        t0 = time.time()
        train_early_exit(net, data, ExitTrainConfig(epochs=epochs, warmup_epochs=warmup, lr=lr, batch_size=batch,
                                                    lambda_cost=lam), jei=True)
        m = evaluate_gated(net, data, "cpu", split="test")
        rows.append({"lambda": lam, **m})
        print(f"JEI λ={lam}: acc {m['accuracy']:.4f} macs {m['macs_per_sample']:,.0f} ({time.time() - t0:.0f} s)",
              flush=True)
    return rows, sweep, base.exit_costs()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fashion-train", type=int, default=12000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--backbone", choices=("mlp", "vit"), default="mlp")
    args = ap.parse_args()
    sets = [("digits", lambda: load_digits(seed=0), 64, 64)] if args.backbone == "mlp" else []
    sets.append(("Fashion-MNIST", lambda: load_fashion_mnist(seed=0, max_train=args.fashion_train), 128, 128))
    what = "4-block MLP" if args.backbone == "mlp" else "4-block ViT (width 32, 2 heads, 7-px patches, CLS exits)"
    out = [f"JEI-DNN vs confidence thresholds: {what}, "
           f"{args.epochs} epochs ({args.epochs // 2} warm-up for JEI-DNN), Adam, seed 0; test split.", ""]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(sets), figsize=(6 * len(sets), 4))
    for ax, (name, load, hidden, batch) in zip(np.atleast_1d(axes), sets):
        try:
            data = load()
        except DataMissing as e:
            out += [f"**{name}**: skipped ({e})", ""]
            continue
        lr = 3e-3 if args.backbone == "mlp" else 2e-3
        rows, sweep, costs = run(data, hidden, args.epochs, args.epochs // 2, lr, batch, args.backbone)
        out += [f"**{name}** ({len(data.train)} train / {len(data.test)} test; exit costs "
                f"{', '.join(f'{c:,.0f}' for c in costs)} MACs)", "",
                "| method | knob | test accuracy | expected MACs | MACs / full | ECE | coverage (α=.05) | set size |",
                "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| JEI-DNN | λ={r['lambda']} | {r['accuracy']:.4f} | {r['macs_per_sample']:,.0f} | "
                       f"{r['macs_per_sample'] / costs[-1]:.2f} | {r['ece']:.3f} | {r['conformal_coverage']:.3f} | "
                       f"{r['conformal_set_size']:.2f} |")
        for p in sweep[::6] + [sweep[-1]]:
            out.append(f"| threshold (max-softmax) | q={p['q']:.2f} | {p['test_accuracy']:.4f} | "
                       f"{p['test_macs_per_sample']:,.0f} | {p['test_macs_per_sample'] / costs[-1]:.2f} | "
                       f"{p['ece']:.3f} (val) | – | – |")
        out.append("")
        ax.plot([p["test_macs_per_sample"] for p in sweep], [p["test_accuracy"] for p in sweep], "-", color="grey",
                label="threshold sweep (one backbone)")
        ax.plot([r["macs_per_sample"] for r in rows], [r["accuracy"] for r in rows], "o", color="C3",
                label="JEI-DNN (one model per λ)")
        ax.set_title(name)
        ax.set_xlabel("expected MACs per sample (test)")
        ax.set_ylabel("test accuracy")
        ax.legend()
    text = "\n".join(out) + "\n"
    print(text)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stem = "early_exit" if args.backbone == "mlp" else "early_exit_vit"
    (results / f"{stem}.md").write_text(text)
    fig.tight_layout()
    fig.savefig(results / f"{stem}.png", dpi=110)


if __name__ == "__main__":
    main()
