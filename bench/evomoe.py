"""Benchmark: EvoMoE vs training the sparse MoE from scratch (methods.md §6.3, MLP variant).

Next-character prediction over CPython's pydoc texts (`moe_charlm` data, 8-char window), n=8
experts: (a) scratch Switch top-1 (topk, k=1), (b) scratch DTS gate (no shared phase),
(c) EvoMoE: 1 epoch of one shared expert, masked spawning (r = 0.3), then DTS. Same widths,
lr, epochs and seed. Per epoch: validation accuracy and the experts actually run per sample
during training (the dense-to-sparse decay); inference is top-1 for all three.

    python bench/evomoe.py [--epochs 6] [--windows 40000] [--model mlp|transformer]

``--model transformer``: the same three on ``moe_lm_shakespeare`` / ``evomoe_lm_shakespeare`` (a
2-block decoder with an MoE FFN in both blocks, d_model 64, context 64, Shakespeare split by
play): validation/test bits per character, MACs per token.

Writes bench/results/evomoe[_transformer].md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins

from gatesearch.objectives.data import load_char_lm  # noqa: E402
from gatesearch.objectives.moe_classification import EvoMoEClassification, MoEClassification  # noqa: E402
from gatesearch.objectives.moe_lm import EvoMoELanguageModel, MoELanguageModel  # noqa: E402


def runs(plain, evo, load, dts: dict, prefix: str) -> list:
    """The three compared methods: (name, objective, configuration) for scratch Switch top-1,
    scratch DTS and EvoMoE, from a plain MoE objective class and its EvoMoE class."""
    return [("scratch Switch top-1", plain(f"{prefix}_switch", load), {"gate": "topk", "k": 1, "noisy": False}),
            ("scratch DTS", plain(f"{prefix}_dts", load), {"gate": "dts", **dts}),
            ("EvoMoE (share 1 epoch, mask 0.3, DTS)", evo(f"{prefix}_evo", load),
             {"share_epochs": 1.0, "diversify": "mask", "mask_ratio": 0.3, **dts})]


def compare(methods: list, common: dict, head: list[str], keys: tuple[str, str, str], out_name: str) -> None:
    """Train each method, one table row per method: the validation metric per epoch, the experts
    run per sample in training per epoch, the test metric, inference MACs and wall time.
    ``keys`` = (validation metric, test metric, MACs metric); writes bench/results/``out_name``."""
    val, test, macs = keys
    lines = list(head)
    for name, objective, extra in methods:
        reports = []
        t0 = time.time()
        objective.run(objective.resolve({**common, **extra}), report=reports.append)
        per_epoch = " ".join(f"{r[val]:.3f}" for r in reports)
        active = " ".join(f"{r['train_active_experts']:.2f}" for r in reports)
        lines.append(f"| {name} | {per_epoch} | {active} | {reports[-1][test]:.3f} | "
                     f"{reports[-1][macs]:,.0f} | {time.time() - t0:.0f} s |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / out_name).write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--windows", type=int, default=40000)
    ap.add_argument("--model", choices=("mlp", "transformer"), default="mlp")
    ap.add_argument("--steps-per-epoch", type=int, default=100)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    if args.model == "transformer":
        return transformer(args)
    load = lambda seed: load_char_lm(seed=seed, max_windows=args.windows)  # noqa: E731
    common = {"epochs": args.epochs, "n_experts": 8, "expert_hidden": 128, "expert_out": 64, "batch_size": 128,
              "lr": 3e-3, "seed": 0}
    dts = {"tau_max": 2.0, "tau_min": 0.1, "tau_decay": "exp", "tau_decay_epochs": args.epochs * 0.5,
           "dts_threshold": 1e-3, "balance_weight": 1e-2}
    head = [f"Char LM on pydoc texts ({args.windows} windows, 64 symbols), n=8 experts, {args.epochs} epochs.", "",
            "| method | val accuracy per epoch | experts run per sample in training, per epoch | test acc | "
            "inference MACs | time |", "|---|---|---|---|---|---|"]
    compare(runs(MoEClassification, EvoMoEClassification, load, dts, "b"), common, head,
            ("accuracy", "test_accuracy", "macs_per_sample"), "evomoe.md")


def transformer(args) -> None:
    from gatesearch.objectives.base import DataLoader

    load = DataLoader("load_shakespeare")
    common = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch, "n_experts": 8, "seed": 0,
              "k_sweep": False}
    dts = {"tau_max": 2.0, "tau_min": 0.1, "tau_decay": "exp", "tau_decay_epochs": args.epochs * 0.5}
    head = [f"Transformer char LM on Shakespeare (held-out plays), 2 MoE blocks, d_model 64, n=8 experts, "
            f"{args.epochs} epochs × {args.steps_per_epoch} steps × 32 windows of 64 characters; DTS τ 2 → 0.1 over "
            f"{args.epochs * 0.5:g} epochs, switch to top-1 at 0.8 of the DTS phase (default).", "",
            "| method | val bits/char per epoch | experts run per token in training, per epoch | test bits/char | "
            "inference MACs/token | time |", "|---|---|---|---|---|---|"]
    compare(runs(MoELanguageModel, EvoMoELanguageModel, load, dts, "t"), common, head,
            ("val_bpc", "test_bpc", "macs_per_token"), "evomoe_transformer.md")


if __name__ == "__main__":
    main()
