"""Benchmark glue around the simulated backend (:mod:`gatesearch.search.loop.simulated`, the package's):
paired ratios and differences with bootstrap intervals, and cached parallel jobs."""

from __future__ import annotations

import json

import numpy as np


def paired_ratio(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """mean(a) / mean(b) over paired seeds, with a 95 % percentile bootstrap interval (seeds
    resampled jointly, so the pairing is kept)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = a[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-300)
    return float(a.mean() / max(b.mean(), 1e-300)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def paired_difference(d: np.ndarray, *, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """mean(d) of paired differences, with a 95 % percentile bootstrap interval (pairs resampled)."""
    d = np.asarray(d, float)
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def run_cached(run, jobs, cache, workers: int) -> tuple[dict, int]:
    """Run ``run(job)`` for every job not already in the JSONL ``cache`` (keyed by the result's
    ``"job"``), ``workers`` processes at a time, appending each result as it ends (an interrupted
    benchmark continues where it stopped). Returns (job tuple -> result, how many ran now)."""
    from multiprocessing import Pool

    done = {}
    if cache.exists():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            done[tuple(r["job"])] = r
    todo = [j for j in jobs if tuple(j) not in done]
    with Pool(workers) as pool, cache.open("a") as out:
        for i, r in enumerate(pool.imap_unordered(run, todo, chunksize=1), 1):
            done[tuple(r["job"])] = r
            out.write(json.dumps(r) + "\n")
            out.flush()
            print(f"  {i}/{len(todo)} {r['objective']} {r['label']} seed {r['seed']}: {r['seconds']:.0f} s", flush=True)
    return done, len(todo)
