"""Real evaluations of the harder searcher benchmark: random configurations of a continuous +
conditional MoE space, each trained with the real objective, with per-epoch learning curves.

The space (:data:`SPACE`) covers the mission's gate knobs: gate type, n_experts, k, COMET tree
depth, the smooth-step gamma and entropy weight, Top-k noise, the permutation local search and
its budget, learning rate and expert width. Two data sets (:data:`DATASETS`): scikit-learn's
digits (``moe_digits``, accuracy) and UCI Adult census income (``moe_adult``, ROC AUC), both
against MACs per sample. Configurations are drawn by the product's random searcher (seed 0),
so configuration ``i`` is the same on every machine; each is trained once (seed 0, 9 epochs,
one thread) and its per-epoch (objective, MACs) curve is appended to
``bench/data/evaluations_<objective>.jsonl.gz``, a versioned file (not in the git-ignored
results folder): ``bench/surrogate.py`` fits the benchmark's surrogate on it, and the COMET
tuning-budget analysis reads it directly. Interrupted runs continue where they stopped.

    python bench/evaluations.py --objective moe_digits --n 2000 [--workers 2]
    python bench/evaluations.py --objective moe_lm_shakespeare --n 400   # COMET's claim on the LM
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins
DATA = ROOT / "bench" / "data"
EPOCHS = 9
#: objective -> fixed values (adult: larger batches keep a 9-epoch training near a few seconds)
DATASETS = {"moe_digits": {"epochs": EPOCHS, "expert_out": 16},
            "moe_adult": {"epochs": EPOCHS, "expert_out": 16, "batch_size": 512},
            # the workload closest to COMET's strongest results (larger, token-level MoEs): the
            # transformer LM, cut to what the 2-core machine trains in ~20 s a trial (3 epochs of
            # 100 steps of 16 x 64 tokens, val_bpc on 8,192 held-out tokens spread over both plays)
            "moe_lm_shakespeare": {"epochs": 3, "steps_per_epoch": 100, "batch_size": 16, "eval_tokens": 8192,
                                   "k_sweep": False}}
PARAMS = """\
params:
  gate: {type: categorical, choices: [topk, hash, dselect_k, comet, softmax]}
  n_experts: {type: int, low: 4, high: 16}
  k: {type: int, low: 1, high: 4, when: {gate: [topk, dselect_k, comet]}}
  tree_depth: {type: int, low: 0, high: 4, when: {gate: [comet]}}
  gamma: {type: float, low: 0.01, high: 10.0, log: true, when: {gate: [dselect_k, comet]}}
  entropy_weight: {type: float, low: 1.0e-3, high: 1.0, log: true, when: {gate: [dselect_k, comet]}}
  noisy: {type: bool, when: {gate: [topk]}}
  local_search: {type: bool, when: {gate: [topk, dselect_k, comet]}}
  ls_budget_epochs: {type: float, low: 0.5, high: 3.0, when: {local_search: [true]}}
  lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
  expert_hidden: {type: int, low: 8, high: 128, log: true}
"""


#: the LM's space: the gates that take a local search (COMET's tuning-budget question), their knobs
LM_PARAMS = """\
params:
  gate: {type: categorical, choices: [topk, dselect_k, comet]}
  n_experts: {type: int, low: 4, high: 8}
  k: {type: int, low: 1, high: 2}
  tree_depth: {type: int, low: 0, high: 3, when: {gate: [comet]}}
  gamma: {type: float, low: 0.01, high: 10.0, log: true, when: {gate: [dselect_k, comet]}}
  entropy_weight: {type: float, low: 1.0e-3, high: 1.0, log: true, when: {gate: [dselect_k, comet]}}
  noisy: {type: bool, when: {gate: [topk]}}
  local_search: {type: bool}
  ls_budget_epochs: {type: float, low: 0.5, high: 2.0, when: {local_search: [true]}}
  lr: {type: float, low: 1.0e-3, high: 1.0e-2, log: true}
"""


def space_text(objective: str) -> str:
    """The benchmark space as a space file for ``objective`` (validated like a user's)."""
    fixed = ", ".join(f"{k}: {v}" for k, v in DATASETS[objective].items())
    params = LM_PARAMS if objective.startswith("moe_lm") else PARAMS
    return f"name: hard-{objective}\nobjective: {objective}\nfixed: {{{fixed}}}\n" + params


def space(objective: str):
    from gatesearch.search.config.validate import validate_space_file
    from gatesearch.spaces import parse_space_file

    sf = parse_space_file(space_text(objective), f"bench/evaluations.py:{objective}")
    validate_space_file(sf)
    return sf


def path(objective: str) -> Path:
    return DATA / f"evaluations_{objective}.jsonl.gz"


def metric_names(objective: str) -> tuple[str, str]:
    from gatesearch.objectives import get_objective

    names = tuple(m.name for m in get_objective(objective).objectives)
    return names[0], names[1]


def configs(objective: str, n: int) -> list[dict]:
    """The first ``n`` configurations drawn by the product's random searcher (seed 0)."""
    from gatesearch.search.searchers.registry import SEARCHERS

    sf = space(objective)
    core = SEARCHERS["random"].core(sf.space, list(metric_names(objective)), ["max", "min"], seed=0, budget=n)
    return [core.ask(str(i)) for i in range(n)]


def _train(job) -> dict:
    import torch

    torch.set_num_threads(1)
    from gatesearch.objectives import get_objective

    objective, i, cfg = job
    obj = get_objective(objective)
    metric, cost = metric_names(objective)
    curve = []
    t0 = time.time()
    obj.run(obj.resolve({**DATASETS[objective], **cfg}), report=lambda m: curve.append([m[metric], m[cost]]))
    return {"i": i, "config": cfg, "curve": curve, "seconds": round(time.time() - t0, 3)}


def load(objective: str) -> list[dict]:
    """Every stored evaluation of ``objective``, in configuration order."""
    p = path(objective)
    if not p.exists():
        return []
    with gzip.open(p, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return sorted(rows, key=lambda r: r["i"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--objective", choices=list(DATASETS), required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    args = ap.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    done = {r["i"] for r in load(args.objective)}
    jobs = [(args.objective, i, c) for i, c in enumerate(configs(args.objective, args.n)) if i not in done]
    print(f"{args.objective}: {len(done)} stored, {len(jobs)} to train", flush=True)
    t0 = time.time()
    with Pool(args.workers) as pool, gzip.open(path(args.objective), "at", encoding="utf-8") as out:
        for n, row in enumerate(pool.imap_unordered(_train, jobs, chunksize=1), 1):
            out.write(json.dumps(row) + "\n")
            if n % 50 == 0:
                out.flush()
                print(f"  {n}/{len(jobs)} in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
