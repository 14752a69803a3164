"""Benchmark: sparse-dispatch MoE layer vs dense-all-experts vs floors and a roofline.

For n experts and k active per row (Top-k gate, no noise), times on random data:
  sparse   - MoELayer's real dispatch (gather rows per expert, one matmul each, scatter-add)
  dense    - every expert on every row, combined with the same weights (reference path)
  floor    - the gate plus ONE expert matmul over B·k rows: the same multiply-adds as the
             sparse path with no dispatch at all (a lower bound no implementation reaches)
  grouped  - the grouped floor: the gate, the gather of B·k rows, n expert matmuls on equal
             contiguous chunks (reading every expert's weights, as any implementation must)
             and the weighted scatter-add back: perfect balance, no routing bookkeeping
  roofline - max(FLOPs / measured matmul FLOP/s, bytes / measured copy bandwidth) of the
             sparse layer's work (FLOPs of the gate and B·k expert rows; bytes of every
             expert's weights read once plus the activations gathered, written and combined)
  ggemm    - CUDA only: the same dispatch with torch._grouped_mm (bf16) for both expert
             matmuls (one kernel per layer instead of one per expert), where available
Routing is uniform (random inputs) or skewed (--skew: half the rows pushed towards expert 0,
one hot expert, as a collapsed router produces). Both inference (no_grad, eval) and
forward+backward (train) are measured; median of repeats after warm-up. Writes a markdown
table to stdout and bench/results/moe_layer.md (moe_layer_skewed.md with --skew).

    python bench/moe_layer.py [--batch 2048] [--d 128] [--hidden 512] [--device cpu|cuda] [--skew]
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


def machine_peaks(device: str) -> tuple[float, float]:
    """(matmul FLOP/s, copy bytes/s) measured on ``device`` (fp32)."""
    a = torch.randn(2048, 2048, device=device)
    t = timeit(lambda: a @ a, device, 5) / 1e3
    big = torch.empty(64 * 2**20, device=device)  # 256 MiB
    dst = torch.empty_like(big)
    c = timeit(lambda: dst.copy_(big), device, 5) / 1e3
    return 2 * 2048**3 / t, 2 * big.numel() * 4 / c


def bench(n: int, k: int, args, peaks: tuple[float, float]) -> dict:
    torch.manual_seed(0)
    dev = args.device
    bank = ExpertBank(n, args.d, args.hidden, args.d).to(dev)
    gate = build_gate(TopKGateConfig(k=k, noisy=False), d_in=args.d, n_experts=n).to(dev)
    layer = MoELayer(bank, [gate]).to(dev)
    x = torch.randn(args.batch, args.d, device=dev)
    if args.skew:  # half the rows lean towards expert 0: one hot expert
        hot = gate.w_gate.weight[0].detach()
        x[: args.batch // 2] += 4.0 * hot / hot.norm() * args.d ** 0.5 / 4
    ctx = RouteContext()
    B, P = args.batch, args.batch * k
    x_floor = torch.randn(P, args.d, device=dev)
    # grouped floor: P dispatched pairs in n equal chunks (row ids as a fixed shuffle)
    g_rows = torch.randperm(B, device=dev).repeat(k)
    g_w = torch.rand(P, 1, device=dev)
    chunks = [P // n + (1 if e < P % n else 0) for e in range(n)]
    reps = max(3, args.reps // (1 + n // 16))

    def sparse():
        return layer(x, ctx).outputs[0]

    def dense():
        return layer(x, ctx, dense=True).outputs[0]

    def floor():
        gate(x, ctx)
        return bank.run_one(0, x_floor)

    def grouped():
        gate(x, ctx)
        weights = tuple(p.unbind(0) for p in (bank.w1, bank.b1, bank.w2, bank.b2))
        xs = x.index_select(0, g_rows).split(chunks)
        out = torch.cat([bank.run_one(e, xe, weights) for e, xe in enumerate(xs)])
        return x.new_zeros(B, args.d).index_add(0, g_rows, g_w * out)

    paths = {"sparse": sparse, "dense": dense, "floor": floor, "grouped": grouped}
    if dev == "cuda" and hasattr(torch, "_grouped_mm"):
        w1, w2 = bank.w1.detach().bfloat16(), bank.w2.detach().bfloat16()

        def ggemm():
            union = layer.route(x, ctx)[0]
            experts_idx, rows = union.mask.t().nonzero(as_tuple=True)
            offs = torch.cumsum(torch.bincount(experts_idx, minlength=n), 0).to(torch.int32)
            xs = x.index_select(0, rows).bfloat16()
            h = torch.relu(torch._grouped_mm(xs, w1, offs=offs) + bank.b1[experts_idx].bfloat16())
            out = torch._grouped_mm(h, w2, offs=offs) + bank.b2[experts_idx].bfloat16()
            w = union.weights[rows, experts_idx].unsqueeze(1)
            return x.new_zeros(B, args.d).index_add(0, rows, w * out.float())

        paths["ggemm"] = ggemm
    layer.eval()
    with torch.no_grad():
        routing = layer.route(x, ctx)[0]
        load = routing.mask.sum(0).float()
        torch.testing.assert_close(sparse(), dense(), atol=1e-4, rtol=1e-4)
    row = {"n": n, "k": k, "hot_share": float(load.max() / load.sum())}
    # roofline of the sparse layer's forward (fp32): the gate and P expert rows; every expert's
    # weights read once, x read, P rows gathered (written + read), hidden and outputs written + read
    flops = 2 * B * args.d * n + 2 * P * (args.d * args.hidden + args.hidden * args.d)
    byts = 4 * (n * (2 * args.d * args.hidden + args.hidden + args.d) + B * args.d + 2 * P * args.d
                + 2 * P * args.hidden + 2 * P * args.d + B * args.d)
    row["roofline"] = 1e3 * max(flops / peaks[0], byts / peaks[1])
    with torch.no_grad():
        for name, fn in paths.items():
            try:
                row[f"inf_{name}"] = timeit(fn, dev, reps)
            except RuntimeError as e:  # e.g. grouped_mm unsupported on this GPU
                print(f"{name}: {e}")
    layer.train()
    for name, fn in paths.items():
        if name == "ggemm":
            continue  # inference only (bf16 copies of the weights)
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
    p.add_argument("--skew", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    peaks = machine_peaks(args.device)
    rows = [bench(n, k, args, peaks) for n in (8, 16, 64) for k in (1, 2, 4)]
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    head = (f"MoE layer, {args.device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"batch {args.batch}, d {args.d}, expert hidden {args.hidden}, "
            f"{'skewed (one hot expert)' if args.skew else 'uniform'} routing (ms, median). Measured peaks: "
            f"{peaks[0] / 1e9:,.0f} GFLOP/s (fp32 matmul), {peaks[1] / 1e9:,.1f} GB/s (copy).\n\n")
    ggemm = any("inf_ggemm" in r for r in rows)
    lines = ["| n | k | hot expert's share | inference sparse | dense | grouped floor | floor | roofline "
             + ("| grouped GEMM bf16 " if ggemm else "")
             + "| sparse/grouped | sparse/roofline | train sparse | dense | grouped floor | sparse/grouped |",
             "|---" * (14 + ggemm) + "|"]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['k']} | {r['hot_share']:.2f} | {r['inf_sparse']:.2f} | {r['inf_dense']:.2f} | "
            f"{r['inf_grouped']:.2f} | {r['inf_floor']:.2f} | {r['roofline']:.3f} | "
            + (f"{r.get('inf_ggemm', float('nan')):.2f} | " if ggemm else "")
            + f"{r['inf_sparse'] / r['inf_grouped']:.2f}x | {r['inf_sparse'] / r['roofline']:.1f}x | "
            f"{r['train_sparse']:.2f} | {r['train_dense']:.2f} | {r['train_grouped']:.2f} | "
            f"{r['train_sparse'] / r['train_grouped']:.2f}x |")
    text = head + "\n".join(lines) + "\n"
    print(text)
    default = f"moe_layer{'_skewed' if args.skew else ''}{'_cuda' if args.device == 'cuda' else ''}.md"
    out = Path(args.out or Path(__file__).parent / "results" / default)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
