"""Benchmark: sparse-dispatch MoE layer vs dense-all-experts vs the active-FLOP floor.

For n experts and k active per row (Top-k gate, no noise), times on random data:
  sparse  - MoELayer's real dispatch (gather rows per expert, one matmul each, scatter-add)
  dense   - every expert on every row, combined with the same weights (reference path)
  floor   - the gate plus ONE expert matmul over B·k rows: the same multiply-adds as the
            sparse path with no dispatch at all (what perfect dispatch would cost)
Both inference (no_grad, eval) and forward+backward (train) are measured; median of
repeats after warm-up. Writes a markdown table to stdout and bench/results/moe_layer.md.

    python bench/moe_layer.py [--batch 2048] [--d 128] [--hidden 512] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from gatesearch.models import ExpertBank, MoELayer, RouteContext, TopKGateConfig, build_gate


def timeit(fn, device: str, reps: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def bench(n: int, k: int, args) -> dict:
    torch.manual_seed(0)
    dev = args.device
    bank = ExpertBank(n, args.d, args.hidden, args.d).to(dev)
    gate = build_gate(TopKGateConfig(k=k, noisy=False), d_in=args.d, n_experts=n).to(dev)
    layer = MoELayer(bank, [gate]).to(dev)
    x = torch.randn(args.batch, args.d, device=dev)
    ctx = RouteContext()
    x_floor = torch.randn(args.batch * k, args.d, device=dev)
    reps = max(3, args.reps // (1 + n // 16))

    def sparse():
        return layer(x, ctx).outputs[0]

    def dense():
        return layer(x, ctx, dense=True).outputs[0]

    def floor():
        gate(x, ctx)
        return bank.run_one(0, x_floor)

    row = {"n": n, "k": k}
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(sparse(), dense(), atol=1e-4, rtol=1e-4)
        for name, fn in (("sparse", sparse), ("dense", dense), ("floor", floor)):
            row[f"inf_{name}"] = timeit(fn, dev, reps)
    layer.train()
    for name, fn in (("sparse", sparse), ("dense", dense), ("floor", floor)):
        def step(fn=fn):
            layer.zero_grad(set_to_none=True)
            fn().sum().backward()
        row[f"train_{name}"] = timeit(step, dev, reps)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--d", type=int, default=128)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "moe_layer.md"))
    args = p.parse_args()
    rows = [bench(n, k, args) for n in (8, 16, 64) for k in (1, 2, 4)]
    head = (f"MoE layer, {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"batch {args.batch}, d {args.d}, expert hidden {args.hidden} (ms, median)\n\n")
    lines = ["| n | k | inference sparse | dense | floor | dense/sparse | sparse/floor | "
             "train sparse | dense | floor | dense/sparse | sparse/floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['k']} | {r['inf_sparse']:.2f} | {r['inf_dense']:.2f} | {r['inf_floor']:.2f} | "
            f"{r['inf_dense'] / r['inf_sparse']:.1f}x | {r['inf_sparse'] / r['inf_floor']:.2f}x | "
            f"{r['train_sparse']:.2f} | {r['train_dense']:.2f} | {r['train_floor']:.2f} | "
            f"{r['train_dense'] / r['train_sparse']:.1f}x | {r['train_sparse'] / r['train_floor']:.2f}x |")
    text = head + "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
