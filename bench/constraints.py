"""Benchmark: outcome constraints, told to the searcher or not.

On the tabulated digits MoE of ``bench/searchers.py`` (every configuration of its discrete space
trained once, 9 epochs, real ``moe_digits``), a MACs cap makes most of the space infeasible: the cap
is the 25th percentile of the table's MACs per sample, so a quarter of the configurations satisfy it.
Each searcher runs as the product runs it (``search/loop/simulated.py``: the registry's cores, 2 trials
at once, deduplication on) for ``--trials`` trials, over ``--seeds`` paired seeds, once told the
constraint (``constraints:`` in a space file: :class:`gatesearch.search.config.constraints.Constraints`)
and once not. Reported per searcher: the share of trials spent on infeasible configurations, and
the hypervolume of the feasible results (reference: the table's median accuracy and the cap), each
as a paired ratio told / not told with a 95 % bootstrap interval.

    python bench/constraints.py [--seeds 20] [--trials 50]

Writes bench/results/constraints.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins
from bench.searchers import EPOCHS, MODES, RESULTS, SPACE, TABLE, key  # noqa: E402
from bench.simulation import paired_ratio  # noqa: E402
from gatesearch.search.loop.simulated import simulate  # noqa: E402

CAP_QUANTILE = 25


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--searchers", nargs="+", default=["tpe", "nsga2", "nevergrad", "random"])
    args = ap.parse_args()
    from gatesearch.search.config.constraints import Bound, Constraints
    from gatesearch.search.front.pareto import hypervolume
    from gatesearch.spaces import parse_space_file

    table = json.loads(TABLE.read_text())
    space = parse_space_file(SPACE, "bench.yaml").space
    finals = np.array([c[-1] for c in table.values()])
    cap = float(np.percentile(finals[:, 1], CAP_QUANTILE))
    constraints = Constraints((Bound("macs_per_sample", high=cap),))
    feasible = finals[finals[:, 1] <= cap]
    ref = [float(np.median(finals[:, 0])), cap]
    best = hypervolume(feasible, MODES, ref)

    def lookup(cfg):
        return table[key(cfg)]

    rows, out = [], {"cap": cap, "feasible_configurations": len(feasible), "configurations": len(table),
                     "seeds": args.seeds, "trials": args.trials, "reference": ref, "best_feasible_hv": best,
                     "machine": f"{platform.machine()}, {platform.python_version()}", "searchers": {}}
    for name in args.searchers:
        t0 = time.time()
        share, hv = {}, {}
        for told in (False, True):
            runs = [simulate(lookup, space, name, seed=s, trials=args.trials, ref=ref, epochs=EPOCHS,
                             constraints=constraints if told else None) for s in range(args.seeds)]
            # the trace's hypervolume is of feasible results only when told; recompute it for both alike
            share[told] = np.array([1 - np.mean([p[1] <= cap for p in r.finals]) for r in runs])
            hv[told] = np.array([hypervolume(np.array([p for p in r.finals if p[1] <= cap]).reshape(-1, 2), MODES, ref)
                                 for r in runs])
        s_ratio = paired_ratio(share[True], share[False]) if share[False].mean() > 0 else (float("nan"),) * 3
        h_ratio = paired_ratio(hv[True], hv[False])
        out["searchers"][name] = {"infeasible_share": {"told": share[True].tolist(), "not_told": share[False].tolist()},
                                  "feasible_hv": {"told": hv[True].tolist(), "not_told": hv[False].tolist()},
                                  "share_ratio": s_ratio, "hv_ratio": h_ratio}
        rows.append(f"| {name} | {share[False].mean():.2f} | {share[True].mean():.2f} | "
                    f"{s_ratio[0]:.2f} [{s_ratio[1]:.2f}, {s_ratio[2]:.2f}] | {hv[False].mean() / best:.3f} | "
                    f"{hv[True].mean() / best:.3f} | {h_ratio[0]:.3f} [{h_ratio[1]:.3f}, {h_ratio[2]:.3f}] |")
        print(f"{name}: {time.time() - t0:.1f} s", flush=True)
    lines = [f"MACs cap {cap:,.0f} per sample (the {CAP_QUANTILE}th percentile of the table: {len(feasible)} of "
             f"{len(table)} configurations feasible); {args.seeds} paired seeds x {args.trials} trials, 2 at once, "
             f"deduplication on; feasible HV as a share of the table's best feasible HV (reference: median accuracy "
             f"{ref[0]:.4f}, the cap). Ratios: told / not told, 95 % bootstrap intervals over seeds.", "",
             "| searcher | infeasible share, not told | told | ratio [95% CI] | feasible HV share, not told | told "
             "| ratio [95% CI] |", "|---|---|---|---|---|---|---|", *rows]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "constraints.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "constraints.json").write_text(json.dumps(out, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
