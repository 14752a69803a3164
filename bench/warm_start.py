"""Benchmark: is a warm-started search as good as one long search?

Goal (issue #21): a search of 50 trials warm-started from an earlier one of 50 reaches at least the
hypervolume of one uninterrupted search of 100. Per seed ``s`` (paired): search A (seed ``s``, 50
trials), then search B (seed ``s + 10_000``, 50 trials) told A's finished trials first exactly as
``gatesearch run --warm-start`` tells them (``tell_known`` and the deduplication memory:
``search/loop/simulated.py``), against one search of 100 trials (seed ``s``). Hypervolume of A ∪ B's
results vs the 100-trial search's, and B *without* the warm start (A ∪ cold B: two independent
searches of 50) as the control. The objective is ``bench/search_quality.py``'s surrogate of real
``moe_digits`` evaluations (its continuous, conditional space); 2 trials at once, deduplication on.

    python bench/warm_start.py [--seeds 20] [--searcher tpe]

Writes bench/results/warm_start.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins
from bench.search_quality import EPOCHS, _setup  # noqa: E402
from bench.simulation import paired_ratio  # noqa: E402
from gatesearch.search.loop.simulated import MODES, simulate  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--searcher", default="tpe")
    ap.add_argument("--objective", default="moe_digits")
    ap.add_argument("--trials", type=int, default=50)
    args = ap.parse_args()
    from gatesearch.search.front.pareto import hypervolume

    space, model, ref, metrics = _setup(args.objective)
    n = args.trials
    kw = dict(ref=ref, epochs=EPOCHS, metrics=metrics)
    hv = {"long": [], "warm": [], "cold": []}
    t0 = time.time()
    for s in range(args.seeds):
        first = simulate(model.curve, space, args.searcher, seed=s, trials=n, **kw)
        known = [(c, dict(zip(metrics, p))) for c, p in zip(first.configs, first.finals)]
        warm = simulate(model.curve, space, args.searcher, seed=s + 10_000, trials=n, warm=known, **kw)
        cold = simulate(model.curve, space, args.searcher, seed=s + 10_000, trials=n, **kw)
        long = simulate(model.curve, space, args.searcher, seed=s, trials=2 * n, **kw)
        hv["long"].append(hypervolume(np.array(long.finals), MODES, ref))
        hv["warm"].append(hypervolume(np.array(first.finals + warm.finals), MODES, ref))
        hv["cold"].append(hypervolume(np.array(first.finals + cold.finals), MODES, ref))
        print(f"seed {s}: long {hv['long'][-1]:.1f} warm {hv['warm'][-1]:.1f} cold {hv['cold'][-1]:.1f}", flush=True)
    arr = {k: np.array(v) for k, v in hv.items()}
    warm_ratio, cold_ratio = paired_ratio(arr["warm"], arr["long"]), paired_ratio(arr["cold"], arr["long"])
    wins = int((arr["warm"] >= arr["long"]).sum())
    lines = [f"{args.objective} surrogate, {args.searcher}, {args.seeds} paired seeds; 2 trials at once, deduplication "
             f"on; reference point ({ref[0]:.4f}, {ref[1]:,.0f}); {time.time() - t0:.0f} s on one core.", "",
             "| search | HV (mean ± sd) | / one search of 100 [95% CI] |", "|---|---|---|",
             f"| one search of {2 * n} | {arr['long'].mean():,.1f} ± {arr['long'].std():,.1f} | 1 |",
             f"| {n} + {n} warm-started | {arr['warm'].mean():,.1f} ± {arr['warm'].std():,.1f} | "
             f"{warm_ratio[0]:.3f} [{warm_ratio[1]:.3f}, {warm_ratio[2]:.3f}] |",
             f"| {n} + {n} independent (control) | {arr['cold'].mean():,.1f} ± {arr['cold'].std():,.1f} | "
             f"{cold_ratio[0]:.3f} [{cold_ratio[1]:.3f}, {cold_ratio[2]:.3f}] |", "",
             f"warm-started >= one search of {2 * n} in {wins} of {args.seeds} seeds"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "warm_start.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "warm_start.json").write_text(json.dumps({k: v for k, v in hv.items()} | {
        "warm_ratio": warm_ratio, "cold_ratio": cold_ratio, "wins": wins, "args": vars(args)}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
