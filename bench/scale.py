"""Benchmark: the driver's cost per finished trial from 100 to 10,000 trials, a simulated large
cluster, and the 32-trial demo search against Optuna alone.

What is measured (each N in a fresh child process, so Ray and MLflow start clean):

1. **Ladder** (`--ladder 100 1000 10000`): `run_search` with the *default settings* (searcher,
   front_every, MLflow logging to SQLite) on a cheap objective (:class:`SleepObjective`: two
   parameters, one epoch, a small Pareto front), 2 trials at a time. Per N: wall seconds per
   finished trial, the driver process's CPU seconds per trial, trials/s and the MLflow rows
   written (runs, params, tags, metrics). The floor is the same search through Ray Tune alone
   (our Tuner, no MLflow sink) at the same N.
2. **Cluster** (`--cluster`): one Ray node with many fake CPUs (`--cluster-cpus`, default 12)
   and as many trials at once, each sleeping an exponential random time (mean `--sleep`), to see
   whether the driver keeps up with many concurrent trials.
3. **Demo vs Optuna** (`--demo`): the README's 32-trial demo search (digits MoE) through
   `gatesearch` and the same objective, space, sampler and budget with Optuna alone
   (`study.optimize(n_jobs=2)`), side by side, `--repeats` times each, alternating.

    python bench/scale.py --ladder 100 1000 10000 --cluster --demo [--out bench/results/scale.json]

Machine and device are recorded in the JSON. Timing goals are stated in the README, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))  # last: a staged or installed gatesearch on PYTHONPATH wins

from gatesearch.objectives import Objective  # noqa: E402
from gatesearch.objectives.metrics import ACCURACY, MACS  # noqa: E402
from gatesearch.objectives.schema import ParamRule, ParamSchema  # noqa: E402


class SleepObjective(Objective):
    """``bench.scale:SleepObjective``: one epoch; optionally sleeps an exponential random time.

    accuracy = sqrt(x) * (0.8 + 0.2 y), macs = 1000 x + 400 y: larger models are better and dearer,
    y buys accuracy at a price, so the front is a thin curve (not every point, as with bench/noop.py).
    """

    name = "bench.scale:SleepObjective"
    objectives = (ACCURACY, MACS)
    schema = ParamSchema(rules={"x": ParamRule("float", "size", low=0.0, high=1.0),
                                "y": ParamRule("float", "extra", low=0.0, high=1.0),
                                "sleep_mean": ParamRule("float", "mean sleep (s)", low=0.0, high=600.0),
                                "epochs": ParamRule("int", "always 1", low=1, high=1)})
    defaults = {"x": 0.5, "y": 0.5, "sleep_mean": 0.0, "epochs": 1}

    def run(self, config, *, report=None, device="cpu"):
        full = self.resolve(config)
        if full["sleep_mean"] > 0:
            time.sleep(random.expovariate(1.0 / full["sleep_mean"]))
        metrics = {ACCURACY.name: full["x"] ** 0.5 * (0.8 + 0.2 * full["y"]),
                   MACS.name: 1000 * full["x"] + 400 * full["y"], "epoch": 1}
        if report:
            report(metrics)
        return metrics


def _space(n: int, sleep_mean: float = 0.0, extra: str = "") -> str:
    return f"""\
name: scale
objective: bench.scale:SleepObjective
search: {{num_samples: {n}{extra}}}
fixed: {{sleep_mean: {sleep_mean}}}
params:
  x: {{type: float, low: 0.0, high: 1.0}}
  y: {{type: float, low: 0.0, high: 1.0}}
"""


def _rows(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("runs", "params", "tags", "metrics", "latest_metrics")}
    finally:
        con.close()


def one(n: int, mode: str, cpus: int, sleep_mean: float, concurrent: int, searcher: str = "") -> dict:
    """Run in a child process: warm up, then time one search of ``n`` trials."""
    from gatesearch.search import ray as tuner
    from gatesearch.search.config.settings import SearchSettings
    from gatesearch.search.lifecycle.runner import run_search
    from gatesearch.spaces import parse_space_file

    extra = (f", max_concurrent: {concurrent}" if concurrent != 2 else "") + (f", searcher: {searcher}" if searcher
                                                                               else "")
    sf = parse_space_file(_space(n, sleep_mean, extra), "scale.yaml")
    tuner.ensure_ray(num_cpus=cpus)
    with tempfile.TemporaryDirectory(prefix="gs-scale") as tmp:
        tuner.run_tuner(space=sf.space, objective_name=sf.objective, fixed={}, metrics=["accuracy", "macs_per_sample"],
                        modes=["max", "min"], settings=SearchSettings(num_samples=2 * concurrent,
                                                                      max_concurrent=concurrent),
                        storage_path=tmp, name="warm")  # actors started, imports done
        cpu0, t0 = time.process_time(), time.perf_counter()
        if mode == "ray":
            _, counts = tuner.run_tuner(space=sf.space, objective_name=sf.objective, fixed=dict(sf.fixed),
                                        metrics=["accuracy", "macs_per_sample"], modes=["max", "min"],
                                        settings=SearchSettings(num_samples=n, max_concurrent=concurrent,
                                                                **({"searcher": searcher} if searcher else {})),
                                        storage_path=tmp, name="bare")
            finished, rows = counts["searcher_final"], {}
        else:
            result = run_search(sf, output_dir=Path(tmp) / "out")
            finished, rows = len(result.trials), _rows(Path(tmp) / "out" / "mlflow.db")
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    tuner.shutdown_ray()
    return {"n": n, "mode": mode, "finished": finished, "wall_s": wall, "driver_cpu_s": cpu,
            "s_per_trial": wall / max(1, finished), "driver_cpu_s_per_trial": cpu / max(1, finished),
            "trials_per_s": finished / wall, "mlflow_rows": rows, "concurrent": concurrent, "sleep_mean": sleep_mean,
            "searcher": searcher or SearchSettings().searcher}


def _child(n: int, mode: str, cpus: int = 2, sleep_mean: float = 0.0, concurrent: int = 2, searcher: str = "") -> dict:
    # ROOT last: a staged or installed gatesearch on PYTHONPATH wins over the checkout's gatesearch/ root
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [os.environ.get("PYTHONPATH", ""), str(ROOT)] if p),
           "RAY_TMPDIR": tempfile.mkdtemp(prefix="gsb", dir="/tmp")}
    done = subprocess.run([sys.executable, __file__, "_one", str(n), mode, str(cpus), str(sleep_mean), str(concurrent),
                           searcher],
                          capture_output=True, text=True, env=env, cwd=str(ROOT))
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def demo_vs_optuna(repeats: int) -> dict:
    """The 32-trial demo through gatesearch vs Optuna alone (same objective, space, sampler, budget)."""
    code = r"""
import json, sys, time, tempfile
from pathlib import Path
which = sys.argv[1]
from gatesearch.spaces import load_space_file
sf = load_space_file(sys.argv[2])
t0 = time.perf_counter()
if which == "gatesearch":
    from gatesearch.search.lifecycle.runner import run_search
    with tempfile.TemporaryDirectory() as tmp:
        r = run_search(sf, output_dir=tmp)
    n = len(r.trials)
else:
    import optuna, torch
    from gatesearch.objectives import get_objective
    from gatesearch.search.config.validate import validate_space_file
    from gatesearch.spaces import suggest
    from gatesearch.search.searchers.registry import SEARCHERS
    objective, settings = validate_space_file(sf)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    names = [m.name for m in objective.objectives]
    study = optuna.create_study(directions=["maximize" if m.mode == "max" else "minimize" for m in objective.objectives],
                                sampler=SEARCHERS[settings.searcher].core(sf.space, names, [m.mode for m in objective.objectives], seed=settings.seed, budget=settings.num_samples).study.sampler)
    def f(trial):
        out = objective.run({**sf.fixed, **suggest(trial, sf.space)})
        return [out[k] for k in names]
    study.optimize(f, n_trials=settings.num_samples, n_jobs=settings.max_concurrent)
    n = len(study.trials)
print(json.dumps({"which": which, "wall_s": time.perf_counter() - t0, "trials": n}))
"""
    out: dict[str, list[float]] = {"gatesearch": [], "optuna": []}
    for _ in range(repeats):
        for which in ("gatesearch", "optuna"):
            env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="gsb", dir="/tmp")}
            # cwd outside the checkout: its gatesearch/ root must not shadow the package on PYTHONPATH
            done = subprocess.run([sys.executable, "-c", code, which, str(ROOT / "spaces" / "examples" / "digits_moe.yaml")],
                                  capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
            if done.returncode != 0:
                raise RuntimeError(done.stderr[-4000:])
            out[which].append(json.loads(done.stdout.strip().splitlines()[-1])["wall_s"])
    ratios = [g / o for g, o in zip(out["gatesearch"], out["optuna"])]
    return {**out, "ratio_per_pair": ratios}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_one":
        n, mode, cpus, sleep_mean, conc = sys.argv[2:7]
        searcher = sys.argv[7] if len(sys.argv) > 7 else ""
        print(json.dumps(one(int(n), mode, int(cpus), float(sleep_mean), int(conc), searcher)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ladder", type=int, nargs="*", default=[])
    ap.add_argument("--floor", type=int, nargs="*", default=None, help="Ray-only floor at these N (default: ladder)")
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--cluster-cpus", type=int, default=12)
    ap.add_argument("--cluster-trials", type=int, default=600)
    ap.add_argument("--sleep", type=float, default=0.5)
    ap.add_argument("--searcher", default="", help="override the default searcher (ladder, floor, cluster)")
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = ap.parse_args()
    report: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                "python": platform.python_version()}, "device": "cpu", "ladder": [], "floor": []}
    for n in args.ladder:
        r = _child(n, "gatesearch", searcher=args.searcher)
        report["ladder"].append(r)
        print(f"gatesearch {r['searcher']} N={n}: {r['s_per_trial']:.4f} s/trial, driver CPU {r['driver_cpu_s_per_trial']:.4f} "
              f"s/trial, {r['trials_per_s']:.1f} trials/s, MLflow rows {r['mlflow_rows']}", flush=True)
    for n in (args.ladder if args.floor is None else args.floor):
        r = _child(n, "ray", searcher=args.searcher)
        report["floor"].append(r)
        print(f"ray only {r['searcher']} N={n}: {r['s_per_trial']:.4f} s/trial, driver CPU {r['driver_cpu_s_per_trial']:.4f} s/trial",
              flush=True)
    if args.cluster:
        r = _child(args.cluster_trials, "gatesearch", cpus=args.cluster_cpus, sleep_mean=args.sleep,
                   concurrent=args.cluster_cpus, searcher=args.searcher)
        report["cluster"] = r
        ideal = args.sleep / args.cluster_cpus
        print(f"cluster {args.cluster_cpus} fake CPUs, {args.cluster_trials} trials sleeping ~Exp({args.sleep} s): "
              f"{r['trials_per_s']:.2f} trials/s (ideal {1 / ideal:.2f}), driver CPU "
              f"{r['driver_cpu_s_per_trial']:.4f} s/trial", flush=True)
        # the same through Ray Tune alone: what the cluster itself (actors on 2 real cores) allows
        r = _child(args.cluster_trials, "ray", cpus=args.cluster_cpus, sleep_mean=args.sleep,
                   concurrent=args.cluster_cpus, searcher=args.searcher)
        report["cluster_floor"] = r
        print(f"cluster, Ray Tune alone: {r['trials_per_s']:.2f} trials/s, driver CPU "
              f"{r['driver_cpu_s_per_trial']:.4f} s/trial", flush=True)
    if args.demo:
        d = demo_vs_optuna(args.repeats)
        report["demo"] = d
        print(f"demo 32 trials: gatesearch {d['gatesearch']} s, optuna {d['optuna']} s, ratios {d['ratio_per_pair']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
