"""Benchmark: the BoTorch searcher's candidates function, ours against optuna-integration's, on the
states of real searches (issue #33: BoTorch on the public tables).

optuna-integration 5.0's ``qnehvi_candidates_func`` optimises the log acquisition qLogNEHVI with
``nonnegative=True``, so BoTorch's initialiser finds no positive value, redraws its raw samples and
starts L-BFGS-B from random points (search/searchers/botorch_qnehvi.py). This script records the
inputs of every candidates call of BoTorch searches on the public tables (the shipped path:
bench/public_benchmarks.py's tables through ``simulate``), then replays each recorded state with
both functions under the same torch seed and reports, paired per state:

- seconds per call;
- the acquisition value each candidate reaches (both scored by one acquisition, built from the same
  state and seed: the quantity the optimiser maximises; higher is better, log scale);
- how often each raised BadInitialCandidatesWarning (fell back to random starting points).

    python bench/botorch_candidates.py --tasks nb201-cifar10 hpolib-naval --seeds 2 --trials 30

Each recorded search and its replays is one job of ``bench.simulation.run_cached`` (``--workers`` at
once, cached in bench/results/botorch_candidates_runs.jsonl). Writes bench/results/botorch_candidates.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins
RESULTS = ROOT / "bench" / "results"


def _record(task: str, seed: int, trials: int, concurrency: int) -> list[dict]:
    """The inputs of every candidates call in one BoTorch search (the shipped searcher through
    ``simulate`` on the public table), as tensors."""
    from bench import public_benchmarks as pb
    from gatesearch.search.searchers import registry

    states: list[dict] = []
    shipped = registry.qlognehvi_candidates

    def recording(train_x, train_obj, train_con, bounds, pending_x):
        states.append({"train_x": train_x.clone(), "train_obj": train_obj.clone(),
                       "train_con": None if train_con is None else train_con.clone(),
                       "bounds": bounds.clone(), "pending_x": None if pending_x is None else pending_x.clone()})
        return shipped(train_x, train_obj, train_con, bounds, pending_x)

    registry.qlognehvi_candidates = recording
    try:
        pb._run((task, f"ours:botorch:{concurrency}", seed, trials))
    finally:
        registry.qlognehvi_candidates = shipped
    return states


def _replay(state: dict, seed: int) -> dict:
    """Both candidates functions on one state, same seed: seconds, acquisition value, warnings."""
    import torch
    from botorch.exceptions.warnings import BadInitialCandidatesWarning
    from botorch.utils.sampling import manual_seed
    from botorch.utils.transforms import normalize
    from optuna_integration.botorch import qnehvi_candidates_func

    from gatesearch.search.searchers.botorch_qnehvi import acquisition, qlognehvi_candidates

    args = (state["train_x"], state["train_obj"], state["train_con"], state["bounds"], state["pending_x"])
    out = {}
    for name, fn in (("ours", qlognehvi_candidates), ("optuna_integration", qnehvi_candidates_func)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            with manual_seed(seed):
                cand = fn(*args)
            seconds = time.perf_counter() - t0
        out[name] = {"seconds": seconds, "candidate": cand,
                     "fell_back": any(issubclass(w.category, BadInitialCandidatesWarning) for w in caught)}
    with manual_seed(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acqf = acquisition(*args)  # fits the model: gradients on
    with torch.no_grad():
        for name in out:
            x = normalize(out[name].pop("candidate"), bounds=state["bounds"])
            out[name]["acq"] = float(acqf(x.unsqueeze(0)))
    return out


def _job(job) -> dict:
    """One job: record a BoTorch search (``job`` = (task, seed, trials, concurrency)) and replay
    each of its states with both functions."""
    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)  # one per worker
    warnings.filterwarnings("ignore")
    task, seed, trials, concurrency = job
    t0 = time.time()
    states = _record(task, seed, trials, concurrency)
    calls = [{"call": i, "n": int(state["train_x"].shape[0]), "pending": state["pending_x"] is not None,
              **_replay(state, seed * 1000 + i)} for i, state in enumerate(states)]
    return {"job": list(job), "objective": task, "label": "botorch candidates", "seed": seed,
            "seconds": time.time() - t0, "calls": calls}


def main() -> None:
    from bench.simulation import run_cached

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["nb201-cifar10", "hpolib-naval"])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--trials", type=int, default=30, help="trials per recorded search (the first 10 are random)")
    p.add_argument("--concurrency", type=int, default=2, help="trials at once (2: half the states have a pending trial)")
    p.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    a = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    jobs = [(t, s, a.trials, a.concurrency) for t in a.tasks for s in range(a.seeds)]
    done, _ = run_cached(_job, jobs, RESULTS / "botorch_candidates_runs.jsonl", a.workers)
    rows = [{"task": task, "seed": seed, **c} for task, seed, *_ in jobs for c in done[(task, seed, a.trials, a.concurrency)]["calls"]]
    (RESULTS / "botorch_candidates.json").write_text(json.dumps(rows, indent=1))
    text = _report(rows, a)
    (RESULTS / "botorch_candidates.md").write_text(text)
    print(text)


def _report(rows: list[dict], a) -> str:
    from bench.simulation import paired_difference, paired_ratio

    lines = ["# BoTorch candidates: ours vs optuna-integration's (states of real searches, paired)\n",
             f"{platform.machine()} {platform.processor() or ''}, torch threads 1; {a.seeds} seeds x "
             f"{a.trials} trials, {a.concurrency} at once per task\n",
             "| task | states | s/call ours | s/call optuna-integration | time ratio (theirs/ours) | "
             "acq ours - theirs (log) | ours higher | fell back: ours | fell back: theirs |",
             "|---|---|---|---|---|---|---|---|---|"]
    for task in [*dict.fromkeys(r["task"] for r in rows), "all"]:
        sel = [r for r in rows if task in ("all", r["task"])]
        if not sel:
            continue
        ours_s = np.array([r["ours"]["seconds"] for r in sel])
        theirs_s = np.array([r["optuna_integration"]["seconds"] for r in sel])
        d_acq = np.array([r["ours"]["acq"] - r["optuna_integration"]["acq"] for r in sel])
        ratio = paired_ratio(theirs_s, ours_s)
        diff = paired_difference(d_acq)
        lines.append(f"| {task} | {len(sel)} | {ours_s.mean():.1f} | {theirs_s.mean():.1f} | "
                     f"{ratio[0]:.2f} [{ratio[1]:.2f}, {ratio[2]:.2f}] | {diff[0]:+.3f} [{diff[1]:+.3f}, {diff[2]:+.3f}] | "
                     f"{np.mean(d_acq > 1e-9):.0%} | {np.mean([r['ours']['fell_back'] for r in sel]):.0%} | "
                     f"{np.mean([r['optuna_integration']['fell_back'] for r in sel]):.0%} |")
    lines.append("\nIntervals: 95 % paired bootstrap over the states. The acquisition value is qLogNEHVI "
                 "(log of the expected hypervolume improvement) of each function's continuous candidate, "
                 "scored by one acquisition rebuilt from the same state and seed.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
