"""Benchmark: which MO-ASHA reaches random search's front with the fewest epochs? (issue #21, item 4)

Goal (unchanged since issue #13): random search's hypervolume after 100 full trials (900 epochs),
reached with at most 1/3 of those epochs (300) in at least 8 of 10 seeds, on both stored-evaluation
data sets (digits: accuracy; Adult: ROC AUC; both against MACs per sample).

Problem and protocol: ``bench/search_quality.py``'s (the surrogate fitted on every stored real
evaluation, 9 epochs per trial, 2 trials at once, deduplication on, the same reference points), run
through ``search/loop/simulated.py``, which drives the shipped scheduler core
(:class:`gatesearch.search.schedulers.moasha.MOASHA`) and searcher cores. Variants: stopping vs promotion
(a paused trial resumes from its checkpoint: epochs counted once), one bracket vs Hyperband
brackets, a searcher told final results only vs one that models the rungs too (BOHB-style,
:mod:`gatesearch.search.searchers.rung_model`); and **Syne Tune's own MOASHA** (``syne-tune`` 0.16, stopping,
configurations from the same random sampler: ``bench/syne_tune_moasha.py``) beside ours with
random sampling. Every variant gets 900 epochs; the random-search target is per seed (paired).

Reported per variant and data set: epochs needed per seed, seeds within 1/3, median fraction,
and the hypervolume at 300 epochs over random's at 900 (ratio of means, 95 % paired bootstrap).

    python bench/moasha.py [--seeds 10] [--workers 2]

Writes bench/results/moasha.{md,json}; finished searches are cached in moasha_runs.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))
RESULTS = ROOT / "bench" / "results"
EPOCHS, TRIALS = 9, 100
BUDGET = TRIALS * EPOCHS

#: label -> (searcher, scheduler settings or "syne-tune", models the rungs)
VARIANTS = {
    "random, full trials (the target)": ("random", None, False),
    "random + MO-ASHA stopping": ("random", {}, False),
    "random + Syne Tune MOASHA (anchor)": ("random", "syne-tune", False),
    "random + Syne Tune MOASHA, its order used as ranks": ("random", "syne-tune-ranks", False),
    "random + MO-ASHA promotion": ("random", {"promote": True}, False),
    "tpe + MO-ASHA stopping (before)": ("tpe", {}, False),
    "tpe + MO-ASHA promotion": ("tpe", {"promote": True}, False),
    "tpe + MO-ASHA stopping, Hyperband 3 brackets": ("tpe", {"brackets": 3}, False),
    "tpe + MO-ASHA promotion, Hyperband 3 brackets": ("tpe", {"promote": True, "brackets": 3}, False),
    "tpe (rung model) + MO-ASHA stopping": ("tpe", {}, True),
    "tpe (rung model) + MO-ASHA promotion": ("tpe", {"promote": True}, True),
    "tpe (rung model) + MO-ASHA promotion, Hyperband 3 brackets": ("tpe", {"promote": True, "brackets": 3}, True),
}


def _run(job) -> dict:
    from bench.search_quality import _setup
    from gatesearch.search.loop.simulated import MODES, simulate

    objective, label, seed = job
    searcher, sched, rung_model = VARIANTS[label]
    sp, model, ref, metrics = _setup(objective)
    t0 = time.time()
    kw: dict = {}
    if isinstance(sched, str):
        from bench.syne_tune_moasha import SyneTuneMOASHA

        kw["scheduler"] = SyneTuneMOASHA(MODES, EPOCHS, grace=1, eta=3.0, seed=seed, ranks_fixed=sched.endswith("ranks"))
    elif sched is not None:
        kw["moasha"] = {"grace": 1, "eta": 3.0, **sched}
    full = sched is None
    tr = simulate(model.curve, sp, searcher, seed=seed, trials=TRIALS if full else 10 * TRIALS, ref=ref,
                  epochs=EPOCHS, metrics=metrics, rung_model=rung_model, max_epochs=None if full else BUDGET, **kw)
    return {"objective": objective, "label": label, "seed": seed, "hv": tr.hv, "epochs": tr.epochs,
            "trained": len(tr.epochs), "finals": len(tr.finals), "seconds": time.time() - t0, "job": list(job)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="the goal is judged on the first 10; all are reported")
    ap.add_argument("--objectives", nargs="+", default=["moe_digits", "moe_adult"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    args = ap.parse_args()
    from bench.simulation import paired_ratio, run_cached

    RESULTS.mkdir(parents=True, exist_ok=True)
    labels = [v for v in VARIANTS if v in args.variants or v.startswith("random, full")]
    import importlib.util

    if importlib.util.find_spec("syne_tune") is None:
        skipped = [v for v in labels if isinstance(VARIANTS[v][1], str)]
        labels = [v for v in labels if v not in skipped]
        print(f"syne-tune is not installed (make bench-extras): skipping {skipped}", flush=True)
    jobs = [(o, v, s) for o in args.objectives for v in labels for s in range(args.seeds)]
    cache = RESULTS / "moasha_runs.jsonl"
    t0 = time.time()
    done, ran = run_cached(_run, jobs, cache, args.workers)
    print(f"{ran} simulated searches in {time.time() - t0:.0f} s", flush=True)

    goal_seeds = min(10, args.seeds)
    lines = [f"Machine: {platform.machine()}, {os.cpu_count()} cores, CPU only; surrogate-simulated (no device). "
             f"{args.seeds} seeds, {BUDGET} epochs per search; goal: random search's HV after {TRIALS} full trials "
             f"within {BUDGET // 3} epochs in >= 8 of seeds 0-{goal_seeds - 1}.", "",
             ]
    if any(isinstance(VARIANTS[v][1], str) for v in labels):
        from bench.syne_tune_moasha import stops_a_dominating_trial

        lines += ["Syne Tune 0.16's MOASHA stops a trial that dominates every trial recorded at its rung: "
                  f"{stops_a_dominating_trial()} (bench/syne_tune_moasha.py: stops_a_dominating_trial).", ""]
    summary: dict = {}
    for obj in args.objectives:
        def runs(label):
            return sorted((done[(obj, label, s)] for s in range(args.seeds)), key=lambda r: r["seed"])

        def hv_at(r, e):
            i = int(np.searchsorted(r["epochs"], e, side="right"))
            return r["hv"][i - 1] if i else 0.0

        target = {r["seed"]: r["hv"][-1] for r in runs(labels[0])}
        lines += [f"### {obj}", "", f"| variant | epochs to random's 100-trial HV, per seed | within 300, seeds 0-{goal_seeds - 1} "
                  f"(goal: 8) | within 300, all {args.seeds} | median fraction | HV@300 epochs / random's HV@900 [95% CI] "
                  "| full trials in 900 epochs |", "|---|---|---|---|---|---|---|"]
        summary[obj] = {}
        for label in labels[1:]:
            rs = runs(label)
            needed = [next((e for e, hv in zip(r["epochs"], r["hv"]) if hv >= target[r["seed"]]), None) for r in rs]
            within_all = sum(1 for n in needed if n is not None and n <= BUDGET / 3)
            within = sum(1 for n in needed[:goal_seeds] if n is not None and n <= BUDGET / 3)
            median = float(np.median([n / BUDGET if n is not None else np.inf for n in needed]))
            ratio = paired_ratio(np.array([hv_at(r, BUDGET // 3) for r in rs]), np.array([target[r["seed"]] for r in rs]))
            finals = np.mean([r["finals"] for r in rs])
            lines.append(f"| {label} | {', '.join('never' if n is None else str(n) for n in needed)} | "
                         f"**{within}/{goal_seeds}** | {within_all}/{len(rs)} | {median:.2f} | {ratio[0]:.2f} [{ratio[1]:.2f}, {ratio[2]:.2f}] | {finals:.0f} |")
            summary[obj][label] = {"epochs_needed": needed, "within_third": within, "within_third_all": within_all,
                                   "median_fraction": median,
                                   "hv300_over_random": ratio, "full_trials": float(finals)}
        lines.append("")
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / "moasha.md").write_text(text)
    (RESULTS / "moasha.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
