"""Benchmark: is the simulated searcher benchmark a benchmark of what ``gatesearch run`` runs?

The searcher numbers in the README come from ``search/loop/simulated.py``, which drives the registry's
ask/tell cores directly. Since every searcher reaches Ray Tune through the same cores (one adapter,
``search/ray/searcher.py: CoreSearcher``), the same comparison made through ``gatesearch run``
itself must agree. Both run on the 640-configuration digits table (``bench/data/digits_table.json``,
real training, 9 epochs each): the product path with a stand-in training function answering from
the table (``bench/table_objective.py``: Ray trials, MLflow, deduplication, 2 trials at once, every
epoch reported), the simulation with a table lookup. For each seed s (paired: the same seed for TPE
and random search, in both paths) the hypervolume of the 50 finished trials is taken (reference
point: the table's median accuracy and median MACs, as in ``bench/searchers.py``). Reported: TPE's
HV@50 / random's HV@50 (ratio of means, 95 % paired bootstrap interval) in each path, and whether
the product's ratio lies in the simulation's interval.

    python bench/shipped_path.py [--seeds 20] [--trials 50]

Writes bench/results/shipped_path.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins
RESULTS = ROOT / "bench" / "results"
EPOCHS = 9
MODES = ("max", "min")
SEARCHERS = ("random", "tpe")


def space_text(searcher: str, seed: int, trials: int) -> str:
    """The benchmark's space (bench/searchers.py's SPACE, its params as they are) on the stand-in
    training function."""
    from bench.searchers import SPACE

    return f"""\
name: shipped-path
objective: bench.table_objective:train
metrics: {{accuracy: max, macs_per_sample: min}}
search: {{searcher: {searcher}, seed: {seed}, num_samples: {trials}, max_concurrent: 2, front_every: 1000}}
""" + SPACE[SPACE.index("params:"):]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=50)
    args = ap.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="gsp", dir="/tmp"))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from bench.simulation import paired_ratio
    from bench.table_objective import _table, table_key
    from gatesearch.search import ray as ray_runtime
    from gatesearch.search.front.pareto import hypervolume
    from gatesearch.search.lifecycle.runner import run_search
    from gatesearch.search.loop.simulated import simulate
    from gatesearch.spaces import parse_space_file

    table = _table()
    finals = np.array([c[-1] for c in table.values()])
    ref = [float(np.median(finals[:, 0])), float(np.median(finals[:, 1]))]
    hv: dict[str, dict[str, list[float]]] = {"product": {s: [] for s in SEARCHERS},
                                             "simulation": {s: [] for s in SEARCHERS}}
    seconds: dict[str, float] = {"product": 0.0, "simulation": 0.0}
    ray_runtime.ensure_ray(num_cpus=2)
    with tempfile.TemporaryDirectory(prefix="gs-shipped") as tmp:
        for seed in range(args.seeds):
            for searcher in SEARCHERS:
                sf = parse_space_file(space_text(searcher, seed, args.trials), str(Path(tmp) / "space.yaml"))
                t0 = time.perf_counter()
                result = run_search(sf, output_dir=Path(tmp) / f"{searcher}-{seed}")
                seconds["product"] += time.perf_counter() - t0
                points = np.array([[t["accuracy"], t["macs_per_sample"]] for t in result.trials
                                   if "accuracy" in t and "macs_per_sample" in t], dtype=float)
                hv["product"][searcher].append(hypervolume(points, MODES, ref) if len(points) else 0.0)
                t0 = time.perf_counter()
                trace = simulate(lambda c: table[table_key(c)], sf.space, searcher, seed=seed, trials=args.trials,
                                 ref=ref, epochs=EPOCHS)
                seconds["simulation"] += time.perf_counter() - t0
                hv["simulation"][searcher].append(trace.hv_at(args.trials))
                print(f"seed {seed} {searcher}: product HV {hv['product'][searcher][-1]:.1f} "
                      f"({len(points)} trials), simulation HV {hv['simulation'][searcher][-1]:.1f}", flush=True)
    ray_runtime.shutdown_ray()
    ratios = {path: paired_ratio(np.array(hv[path]["tpe"]), np.array(hv[path]["random"])) for path in hv}
    inside = ratios["simulation"][1] <= ratios["product"][0] <= ratios["simulation"][2]
    lines = [f"Shipped path vs simulation: 640-configuration digits table, {args.seeds} paired seeds x "
             f"{args.trials} trials, 2 at once, deduplication on; HV reference point (accuracy, MACs) = "
             f"({ref[0]:.4f}, {ref[1]:,.0f}). {platform.machine()}, {os.cpu_count()} CPUs, "
             f"{time.strftime('%Y-%m-%d')}.", "",
             "| path | random HV@50 | TPE HV@50 | TPE / random [95% CI] | wall s |", "|---|---|---|---|---|"]
    for path in hv:
        r, lo, hi = ratios[path]
        lines.append(f"| {'gatesearch run (Ray, MLflow)' if path == 'product' else 'simulated backend (search/loop/simulated.py)'} | "
                     f"{np.mean(hv[path]['random']):.1f} | {np.mean(hv[path]['tpe']):.1f} | "
                     f"{r:.2f} [{lo:.2f}, {hi:.2f}] | {seconds[path]:.0f} |")
    lines += ["", f"The product's ratio {ratios['product'][0]:.2f} is "
              f"{'inside' if inside else 'OUTSIDE'} the simulation's interval "
              f"[{ratios['simulation'][1]:.2f}, {ratios['simulation'][2]:.2f}]."]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shipped_path.md").write_text(text)
    (RESULTS / "shipped_path.json").write_text(json.dumps({"hv": hv, "ratios": ratios, "inside": inside,
                                                           "reference_point": ref, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
