"""Benchmark: does COMET's permutation local search cut the tuning budget? (issue #13, item 5)

The COMET paper (Ibrahim et al., KDD 2023) reports that attaching its permutation-based local
search to a gate reduces the hyper-parameter tuning needed, by up to 100x fewer trials. Measured
here on the real evaluations of ``bench/evaluations.py`` (no surrogate): for each gate with a
``local_search`` knob (Top-k, DSelect-k, COMET) the random configurations split into "without"
and "with local search"; random search within a group draws configurations uniformly from it,
so its expected best objective after n trials is the expectation of the maximum of n draws from
the group's empirical distribution (exact order statistics, with replacement):

    E[max_n] = sum_i v_(i) * ((i/m)^n - ((i-1)/m)^n),   v_(1) <= ... <= v_(m)

For a budget N of the plain gate, the reported number is the smallest n with
E_with[max_n] >= E_without[max_N] (for a minimised metric such as the LM's val_bpc, of the negated
values: the expected best is the expected minimum), and N / n is the budget saving (< 1 or "never" means local
search needs more trials). 95 % intervals: 1,000 bootstrap resamples of each group.

    python bench/local_search_budget.py [--budgets 10 25 50 100]

Writes bench/results/local_search_budget.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins
RESULTS = ROOT / "bench" / "results"
GATES = ("topk", "dselect_k", "comet")
MAX_N = 10_000


def expected_best(values: np.ndarray, n: np.ndarray) -> np.ndarray:
    """E[max of n uniform draws with replacement from ``values``] for every n in ``n``."""
    v = np.sort(values)
    m = len(v)
    cdf = np.arange(1, m + 1) / m  # P(max <= v_(i)) = (i/m)^n
    n = np.asarray(n, dtype=float)[:, None]
    upper, lower = cdf[None, :] ** n, (cdf - 1 / m)[None, :] ** n
    return ((upper - lower) * v[None, :]).sum(axis=1)


def trials_needed(with_ls: np.ndarray, target: float) -> int | None:
    """Smallest n with E[max_n] of ``with_ls`` >= target (None if not within MAX_N)."""
    grid = np.unique(np.round(np.geomspace(1, MAX_N, 400)).astype(int))
    curve = expected_best(with_ls, grid)
    hit = np.flatnonzero(curve >= target - 1e-12)
    if not len(hit):
        return None
    hi = grid[hit[0]]
    lo = grid[hit[0] - 1] if hit[0] else 1
    ns = np.arange(lo, hi + 1)
    exact = expected_best(with_ls, ns)
    return int(ns[np.flatnonzero(exact >= target - 1e-12)[0]])


def analyse(rows: list[dict], budgets: list[int], n_boot: int = 1000, seed: int = 0, mode: str = "max") -> dict:
    """``mode``: the metric's direction; a ``min`` metric (val_bpc) is negated, so "best" is the
    largest throughout (the table prints it back in its own sign). A diverged trial (NaN) counts
    as the worst: 0 for a maximised metric in [0, 1], the worst value seen for a minimised one."""
    rng = np.random.default_rng(seed)
    sign = -1.0 if mode == "min" else 1.0
    out = {}
    for gate in GATES:
        groups = {ls: sign * np.array([r["curve"][-1][0] for r in rows if r["config"]["gate"] == gate
                                       and bool(r["config"].get("local_search")) == ls], dtype=float)
                  for ls in (False, True)}
        finite = np.concatenate([v[np.isfinite(v)] for v in groups.values()] or [np.zeros(1)])
        worst = 0.0 if mode == "max" else float(finite.min()) if len(finite) else 0.0
        groups = {k: np.nan_to_num(v, nan=worst, neginf=worst) for k, v in groups.items()}
        if not len(groups[False]) or not len(groups[True]):
            continue
        res = {"n_without": len(groups[False]), "n_with": len(groups[True]), "budgets": {}}
        for big_n in budgets:
            target = expected_best(groups[False], [big_n])[0]
            point = trials_needed(groups[True], target)
            boots = []
            for _ in range(n_boot):
                a = rng.choice(groups[False], len(groups[False]))
                b = rng.choice(groups[True], len(groups[True]))
                need = trials_needed(b, expected_best(a, [big_n])[0])
                boots.append(big_n / need if need else 0.0)
            lo, hi = np.percentile(boots, [2.5, 97.5])
            res["budgets"][big_n] = {"plain_best": sign * float(target),
                                     "with_ls_best_at_N": sign * float(expected_best(groups[True], [big_n])[0]),
                                     "trials_with_ls": point, "saving": big_n / point if point else 0.0,
                                     "ci": [float(lo), float(hi)]}
        out[gate] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budgets", type=int, nargs="+", default=[10, 25, 50, 100])
    ap.add_argument("--objectives", nargs="+", default=["moe_digits", "moe_adult", "moe_lm_shakespeare"])
    args = ap.parse_args()
    from bench.evaluations import DATASETS, load, metric_names

    RESULTS.mkdir(parents=True, exist_ok=True)
    lines, summary = [], {}
    for obj in args.objectives:
        rows = load(obj)
        metric = metric_names(obj)[0]
        from gatesearch.objectives import get_objective

        mode = get_objective(obj).objectives[0].mode
        res = analyse(rows, args.budgets, mode=mode)
        summary[obj] = res
        epochs = DATASETS[obj]["epochs"]
        lines += [f"### {obj} ({len(rows)} real evaluations; {metric} ({mode}) after {epochs} epochs)", "",
                  "| gate | configs without / with LS | plain budget N | plain E[best of N] | with LS E[best of N] "
                  "| trials with LS to match | saving N/n [95% CI] |", "|---|---|---|---|---|---|---|"]
        for gate, r in res.items():
            for big_n, b in r["budgets"].items():
                need = b["trials_with_ls"]
                saving = f"{b['saving']:.2f}x [{b['ci'][0]:.2f}, {b['ci'][1]:.2f}]" if need else "never"
                lines.append(f"| {gate} | {r['n_without']} / {r['n_with']} | {big_n} | {b['plain_best']:.4f} | "
                             f"{b['with_ls_best_at_N']:.4f} | {need if need else f'> {MAX_N}'} | {saving} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    (RESULTS / "local_search_budget.md").write_text(text)
    (RESULTS / "local_search_budget.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
