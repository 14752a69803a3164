"""Benchmark: searcher quality (hypervolume vs trials), MO-ASHA savings, orchestration overhead.

1. A tabulated objective. Every configuration of a discrete digits-MoE space (5 gates ×
   n_experts {4, 8, 16} × k {1, 2, 4} × lr {1e-3, 3e-3, 1e-2, 3e-2}; k is moot for hash and
   softmax) is trained once for 9 epochs with the real ``moe_digits`` objective and its
   per-epoch (validation accuracy, MACs/sample) is stored in bench/data/digits_table.json
   (versioned; rebuilt only with --rebuild). Searchers then query the table, so many seeds are cheap
   and every searcher sees exactly the same problem.
2. Hypervolume of the full-fidelity results vs number of trials for random, TPE, NSGA-II, GP
   (the registry's Optuna cores, the same ones ``gatesearch run`` puts behind Ray Tune, same
   ``spaces.suggest`` define-by-run) and Nevergrad (our multi-objective ``NevergradMO``), several seeds; and
   random search with our MO-ASHA core (grace 1, η 3, max 9 epochs), stopped trials told as
   pruned (lower fidelity is never told as final), counting every epoch trained. Simulated
   as the product runs (``search/loop/simulated.py``): 2 trials at once, deduplication on.
   This small discrete table (its front has 6 points) is kept as a regression check; the
   harder benchmark is ``bench/search_quality.py``.
   Reference point (fixed for all runs): the table's median accuracy and median MACs, so
   only configurations better than a typical one in both objectives add volume (with a
   loose reference such as accuracy 0, every searcher is within 2 % of the optimum after
   10 trials and the comparison says nothing).
3. Orchestration overhead per trial with a no-op objective (bench/noop.py) through the real
   stack: Ray Tune with actor reuse, with and without the MLflow sink.

    python bench/searchers.py [--seeds 5] [--trials 100] [--rebuild] [--skip-overhead]

Writes bench/results/searchers.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins
RESULTS = ROOT / "bench" / "results"
TABLE = ROOT / "bench" / "data" / "digits_table.json"
EPOCHS = 9
MODES = ("max", "min")
GATES = ("topk", "hash", "dselect_k", "comet", "softmax")
NS, KS, LRS, HIDDEN = (2, 4, 8, 16, 32), (1, 2, 3, 4), (1e-3, 3e-3, 1e-2, 3e-2, 1e-1), (16, 64)
SPACE = f"""\
name: bench
objective: moe_digits
params:
  gate: {{type: categorical, choices: {list(GATES)}}}
  n_experts: {{type: categorical, choices: {list(NS)}}}
  k: {{type: categorical, choices: {list(KS)}, when: {{gate: [topk, dselect_k, comet]}}}}
  lr: {{type: categorical, choices: {list(LRS)}}}
  expert_hidden: {{type: categorical, choices: {list(HIDDEN)}}}
"""


def key(cfg) -> str:
    """Table key; k is clipped to n_experts (k > n means all experts) and moot for hash/softmax."""
    k = min(cfg.get("k", 1), cfg["n_experts"]) if cfg["gate"] in ("topk", "dselect_k", "comet") else 0
    return f"{cfg['gate']}|{cfg['n_experts']}|{k}|{cfg['lr']}|{cfg['expert_hidden']}"


def _train(cfg) -> tuple[str, list[list[float]]]:
    import torch

    torch.set_num_threads(1)
    from gatesearch.objectives import get_objective

    objective = get_objective("moe_digits")
    curve = []
    cfg = {**cfg, "k": min(cfg["k"], cfg["n_experts"])}
    full = objective.resolve({**cfg, "epochs": EPOCHS, "expert_out": 16})
    objective.run(full, report=lambda m: curve.append([m["accuracy"], m["macs_per_sample"]]))
    return key(cfg), curve


def build_table(workers: int) -> dict[str, list[list[float]]]:
    configs, seen = [], set()
    for g in GATES:
        for n in NS:
            for k in KS:
                for lr in LRS:
                    for h in HIDDEN:
                        cfg = {"gate": g, "n_experts": n, "k": k, "lr": lr, "expert_hidden": h}
                        if key(cfg) not in seen:
                            seen.add(key(cfg))
                            configs.append(cfg)
    t0 = time.time()
    with Pool(workers) as pool:
        table = dict(pool.map(_train, configs))
    print(f"trained {len(table)} configurations x {EPOCHS} epochs in {time.time() - t0:.0f} s", flush=True)
    return table


def overhead(trials: int) -> dict[str, float]:
    """Seconds per trial of a no-op objective through Ray Tune (actor reuse), with and without MLflow."""
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("RAY_TMPDIR", tempfile.mkdtemp(prefix="gsb", dir="/tmp"))
    from gatesearch.search import ray as tuner
    from gatesearch.search.config.settings import SearchSettings
    from gatesearch.search.lifecycle.runner import run_search
    from gatesearch.spaces import parse_space_file

    text = f"""\
name: noop
objective: bench.noop:NoOp
search: {{searcher: random, num_samples: {trials}, max_concurrent: 2, seed: 0, front_every: 1000}}
params:
  x: {{type: float, low: 0.0, high: 1.0}}
"""
    sf = parse_space_file(text, "noop.yaml")
    tuner.ensure_ray(num_cpus=2)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: Ray workers, imports
        tuner.run_tuner(space=sf.space, objective_name=sf.objective, fixed={}, metrics=["accuracy", "macs_per_sample"],
                        modes=list(MODES), settings=SearchSettings(searcher="random", num_samples=4),
                        storage_path=tmp, name="warm")
        t0 = time.time()
        tuner.run_tuner(space=sf.space, objective_name=sf.objective, fixed={}, metrics=["accuracy", "macs_per_sample"],
                        modes=list(MODES), settings=SearchSettings(searcher="random", num_samples=trials,
                                                                   max_concurrent=2),
                        storage_path=tmp, name="bare")
        out["ray_tune_s_per_trial"] = (time.time() - t0) / trials
        t0 = time.time()
        run_search(sf, output_dir=Path(tmp) / "full")
        out["ray_tune_plus_mlflow_s_per_trial"] = (time.time() - t0) / trials
    tuner.shutdown_ray()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--searchers", nargs="+", default=["random", "tpe", "nsga2", "nevergrad"],
                    help="gp and botorch take seconds per suggestion; the harder benchmark runs them")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not TABLE.exists():
        TABLE.write_text(json.dumps(build_table(workers=max(1, os.cpu_count() or 1))))
    table = json.loads(TABLE.read_text())
    from gatesearch.search.front.pareto import hypervolume
    from gatesearch.spaces import parse_space_file

    space = parse_space_file(SPACE, "bench.yaml").space
    all_points = np.array([c[-1] for c in table.values()])
    ref = [float(np.median(all_points[:, 0])), float(np.median(all_points[:, 1]))]
    best_hv = hypervolume(all_points, MODES, ref)

    from bench.simulation import paired_ratio
    from gatesearch.search.loop.simulated import simulate

    def lookup(cfg):
        return table[key(cfg)]

    runs = {}
    for name in (*args.searchers, "random+moasha"):
        searcher, moasha = name.split("+")[0], name.endswith("moasha")
        t0 = time.time()
        n = args.trials * (4 if moasha else 1)  # MO-ASHA trials are cheaper: give it more of them
        runs[name] = [simulate(lookup, space, searcher, seed=s, trials=n, ref=ref, epochs=EPOCHS, moasha=moasha)
                      for s in range(args.seeds)]
        print(f"{name}: {time.time() - t0:.1f} s", flush=True)

    def hv_at(name, t):
        return np.array([run.hv_at(t) for run in runs[name]])

    random100 = hv_at("random", args.trials)
    lines = [f"Tabulated digits MoE ({len(table)} configurations, {EPOCHS} epochs each); "
             f"{args.seeds} seeds, 2 trials at once, deduplication on (the product's settings); "
             f"HV reference point (accuracy, MACs) = ({ref[0]:.4f}, {ref[1]:,.0f}); "
             f"HV of the whole table {best_hv:,.1f}.", "",
             "| searcher | HV @10 | HV @25 | HV @50 | HV @100 | HV@50 / random HV@50 [95% CI] | distinct trained |",
             "|---|---|---|---|---|---|---|"]
    r50 = hv_at("random", 50)
    summary = {}
    for name in args.searchers:
        cells = [f"{hv_at(name, t).mean():,.1f} ± {hv_at(name, t).std():,.1f}" for t in (10, 25, 50, args.trials)]
        ratio, lo, hi = paired_ratio(hv_at(name, 50), r50)
        trained = np.mean([len(run.hv) for run in runs[name]])
        summary[name] = {"hv50": float(hv_at(name, 50).mean()), "hv100": float(hv_at(name, args.trials).mean()),
                         "ratio50": [ratio, lo, hi], "trained": float(trained)}
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ratio:.2f} [{lo:.2f}, {hi:.2f}] | {trained:.0f} |")
    # MO-ASHA: epochs needed to reach random's HV at `trials` trials (same seed; = trials * EPOCHS epochs)
    budget = args.trials * EPOCHS
    needed = []
    for run, target in zip(runs["random+moasha"], random100):
        hit = next((ep for ep, hv in zip(run.epochs, run.hv) if hv >= target), math.inf)
        needed.append(hit)
    frac = [n / budget for n in needed]
    lines += ["", f"MO-ASHA (random sampling, grace 1, eta 3, max {EPOCHS} epochs): epochs to reach the same seed's "
              f"random-search HV after {args.trials} full trials ({budget} epochs): "
              + ", ".join("never" if math.isinf(n) else str(n) for n in needed)
              + f" per seed; median fraction of the epochs {np.median(frac):.2f}."]
    summary["moasha"] = {"epochs_needed": [None if math.isinf(n) else int(n) for n in needed],
                         "median_fraction": float(np.median(frac)), "random_hv": float(random100.mean())}
    if not args.skip_overhead:
        oh = overhead(trials=40)
        summary["overhead"] = oh
        lines += ["", f"Orchestration overhead, no-op objective, 40 trials, 2 at a time, actor reuse: "
                  f"{oh['ray_tune_s_per_trial']:.2f} s/trial (Ray Tune + searcher), "
                  f"{oh['ray_tune_plus_mlflow_s_per_trial']:.2f} s/trial (plus MLflow child runs and the front)."]
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / "searchers.md").write_text(text)
    (RESULTS / "searchers.json").write_text(json.dumps(summary, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for name in args.searchers:
        curves = np.array([[run.hv_at(t) for t in range(1, args.trials + 1)] for run in runs[name]])
        a.plot(np.arange(1, curves.shape[1] + 1), curves.mean(0), label=name)
    for name in ("random", "random+moasha"):
        for i, run in enumerate(runs[name]):
            b.plot(run.epochs, run.hv, color="C0" if name == "random" else "C3", alpha=0.6, label=name if i == 0 else None)
    b.set_xlabel("epochs trained")
    b.set_xlim(0, budget)
    b.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "searchers.png", dpi=110)


if __name__ == "__main__":
    main()
