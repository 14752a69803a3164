"""Benchmark: the MoE transformer at transformer shapes: training/inference tokens per second of
the LM per gate, and the token-level MoE layer's sparse / dense / floor ratios.

1. LM throughput: ``MoETransformerLM`` (the ``moe_lm_shakespeare`` architecture, sizes below) on
   random token ids, forward+backward+AdamW step (train) and forward only (inference), for
   Switch (top-1), Top-2, Hash and COMET (k=2) gates; tokens/s and MACs/token.
2. Layer ratios: ``MoEFeedForward`` on ``(B, T, d)`` with a Top-k gate (no noise): sparse dispatch,
   the dense reference (every expert on every token), and the floor (the gate plus ONE expert
   matmul pair over B·T·k tokens: the same multiply-adds with no dispatch).

Median of repeats after warm-up; bf16 autocast and sdpa attention on CUDA. Record the device.

    python bench/transformer.py [--device cpu|cuda] [--d 256] [--layers 4] [--context 128] [--batch 16]

On a GPU machine: ``python bench/transformer.py --device cuda --d 768 --layers 12 --context 512 --batch 16``.
Writes bench/results/transformer[_cuda].md.
"""

from __future__ import annotations

import argparse
import platform
import sys
from contextlib import nullcontext
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins

from bench.moe_layer import timeit as _timeit_ms  # noqa: E402
from gatesearch.models import CometGateConfig, HashGateConfig, TopKGateConfig  # noqa: E402
from gatesearch.models.moe_ffn import MoEFeedForward  # noqa: E402
from gatesearch.models.transformer import MoETransformerConfig, MoETransformerLM  # noqa: E402


def timeit(fn, device: str, reps: int) -> float:
    """Median seconds of ``fn`` after warm-up (bench/moe_layer.py's timer, which reports ms)."""
    return _timeit_ms(fn, device, reps) / 1e3


GATES = {"switch (top-1)": TopKGateConfig(k=1, noisy=False), "top-2": TopKGateConfig(k=2, noisy=False),
         "hash": HashGateConfig(), "comet k=2": CometGateConfig(k=2)}


def autocast(device: str):
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def lm_rows(args) -> list[str]:
    rows = []
    d_head = 64 if args.d >= 256 else 32
    for name, gate in GATES.items():
        torch.manual_seed(0)
        cfg = MoETransformerConfig(vocab=256, context=args.context, n_layers=args.layers, n_heads=args.d // d_head,
                                   d_head=d_head, n_experts=args.experts, gate=gate, moe_every=args.moe_every)
        model = MoETransformerLM(cfg).to(args.device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        ids = torch.randint(0, 256, (args.batch, args.context + 1), device=args.device)
        x, y = ids[:, :-1], ids[:, 1:]

        def train_step():
            with autocast(args.device):
                out = model(x, step=10)
                loss = torch.nn.functional.cross_entropy(out.logits.float().reshape(-1, 256), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            (loss + out.aux_loss).backward()
            opt.step()

        @torch.no_grad()
        def infer():
            with autocast(args.device):
                return model(x, step=10)

        model.train()
        t_train = timeit(train_step, args.device, args.reps)
        model.eval()
        t_inf = timeit(infer, args.device, args.reps)
        macs = infer().macs_per_token
        tokens = args.batch * args.context
        rows.append(f"| {name} | {tokens / t_train:,.0f} | {tokens / t_inf:,.0f} | {macs:,.0f} |")
        print(rows[-1], flush=True)
    return rows


def layer_rows(args) -> list[str]:
    rows = []
    T, d, h = args.context, args.d, 4 * args.d
    for n in (8, 16):
        for k in (1, 2):
            torch.manual_seed(0)
            ffn = MoEFeedForward(d, h, n, TopKGateConfig(k=k, noisy=False)).to(args.device).eval()
            x = torch.randn(args.batch, T, d, device=args.device)
            x_floor = torch.randn(args.batch * T * k, d, device=args.device)
            with torch.no_grad():
                torch.testing.assert_close(ffn(x).output, ffn(x, dense=True).output, atol=1e-4, rtol=1e-4)
                sparse = timeit(lambda: ffn(x), args.device, args.reps)
                dense = timeit(lambda: ffn(x, dense=True), args.device, args.reps)
                floor = timeit(lambda: (ffn.gate(x.reshape(-1, d), _ctx()), ffn.experts.run_one(0, x_floor)),
                               args.device, args.reps)
            rows.append(f"| {n} | {k} | {sparse * 1e3:.2f} | {dense * 1e3:.2f} | {floor * 1e3:.2f} | "
                        f"{dense / sparse:.1f}x | {sparse / floor:.2f}x |")
            print(rows[-1], flush=True)
    return rows


def _ctx():
    from gatesearch.models import RouteContext

    return RouteContext()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--moe-every", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(2)
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.processor() or 'x86_64'}, 2 threads)"
    head = [f"Device: {device}; torch {torch.__version__}. d_model {args.d}, {args.layers} layers (MoE every "
            f"{args.moe_every}), {args.experts} experts, context {args.context}, batch {args.batch}.", "",
            "| gate | train tokens/s | inference tokens/s | inference MACs/token |", "|---|---|---|---|"]
    lm = lm_rows(args)
    layer_head = ["", f"MoEFeedForward alone, (B, T, d) = ({args.batch}, {args.context}, {args.d}), hidden {4 * args.d}, "
                  "inference, ms (median):", "",
                  "| n | k | sparse | dense | floor | dense/sparse | sparse/floor |", "|---|---|---|---|---|---|---|"]
    layer = layer_rows(args)
    text = "\n".join(head + lm + layer_head + layer) + "\n"
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / ("transformer.md" if args.device == "cpu" else f"transformer_{args.device}.md")).write_text(text)


if __name__ == "__main__":
    main()
