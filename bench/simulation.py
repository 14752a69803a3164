"""A simulated search: the product's searchers, deduplication and MO-ASHA against a known objective.

Trials do not run on Ray here: ``evaluate(config)`` returns a learning curve (a table lookup, a
surrogate model or a real training) and time is counted in epochs. What the product does is
reproduced: the searcher is the registry's (:data:`gatesearch.search.searchers.registry.SEARCHERS`, the
same samplers and settings as behind Ray Tune), ``concurrency`` trials run at once (each epoch
advances every running trial by one; the next configuration is asked when a slot frees, so the
searcher proposes while results are pending, as it does with ``max_concurrent: 2``), repeats are
answered from memory when ``dedup`` (:class:`gatesearch.search.searchers.dedup.ProposalMemory`), and MO-ASHA
(:class:`gatesearch.search.schedulers.moasha.MOASHA`) stops trials at its rungs, told to the searcher as
stopped (Optuna: PRUNED) without their partial results (lower fidelity is never a final result).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

MODES = ("max", "min")


@dataclass
class Trace:
    """One simulated search: after each ended trial (in order of ending), the epochs trained so
    far and the hypervolume of the full-fidelity results so far."""

    epochs: list[int] = field(default_factory=list)
    hv: list[float] = field(default_factory=list)
    finals: list[list[float]] = field(default_factory=list)
    feasible: list[bool] = field(default_factory=list)  # per final result: inside the constraints
    configs: list[dict] = field(default_factory=list)  # per final result: its configuration
    answered: int = 0  # repeats answered from memory
    ask_seconds: float = 0.0  # time spent in the searcher's ask/tell
    asks: int = 0

    def hv_at(self, trials: int) -> float:
        """Hypervolume after ``trials`` ended trials (the last value if the search ended sooner)."""
        return self.hv[min(trials, len(self.hv)) - 1] if self.hv else 0.0

    def hv_at_epochs(self, epochs: int) -> float:
        """Hypervolume once at most ``epochs`` epochs were trained."""
        i = int(np.searchsorted(self.epochs, epochs, side="right"))
        return self.hv[i - 1] if i else 0.0


def simulate(evaluate: Callable[[Mapping], Sequence[Sequence[float]]], space, searcher: str, *, seed: int,
             trials: int, ref: Sequence[float], epochs: int, concurrency: int = 2, dedup: bool = True,
             moasha: bool | Mapping = False, metrics: Sequence[str] = ("accuracy", "macs_per_sample"),
             nevergrad_optimizer: str | None = None, constraints=None, warm=(), rung_model: bool = False,
             scheduler=None, max_epochs: int | None = None) -> Trace:
    """Run searcher ``searcher`` for ``trials`` trials on ``evaluate``; return its :class:`Trace`.
    ``evaluate(config)`` returns ``epochs`` rows of (objective, cost). ``constraints`` (a
    :class:`gatesearch.search.config.constraints.Constraints` over ``metrics``) are told to the searcher
    as the product tells them; the trace's hypervolume is then of the feasible results only.
    ``warm``: (configuration, result) pairs of an earlier search, told first as ``gatesearch run
    --warm-start`` tells them (``tell_known`` and the deduplication memory); not in the trace.

    ``moasha``: True for MO-ASHA with grace 1 and eta 3, or the keyword arguments of
    :class:`~gatesearch.search.schedulers.moasha.MOASHA` (``promote``, ``brackets``, ``grace``, ``eta``);
    ``scheduler``: another object with MOASHA's ``on_result``/``promotable``/``milestones`` (a
    benchmark's anchor). ``rung_model``: the searcher also learns from rung results
    (:mod:`gatesearch.search.searchers.rung_model`). A promoted trial resumes where it paused (from its
    checkpoint): its epochs are counted once. ``max_epochs``: stop once that many were trained."""
    from gatesearch.objectives.metrics import EPOCH
    from gatesearch.search.front.pareto import hypervolume
    from gatesearch.search.schedulers.moasha import MOASHA, PAUSE, STOP
    from gatesearch.search.searchers.dedup import ProposalMemory
    from gatesearch.search.searchers.registry import SEARCHERS

    if scheduler is None and moasha:
        scheduler = MOASHA(modes=MODES, max_t=epochs, **({"grace": 1, "eta": 3.0} if moasha is True else dict(moasha)))
    extra = {"nevergrad_optimizer": nevergrad_optimizer} if nevergrad_optimizer else {}
    fidelities = tuple(scheduler.milestones) if rung_model and scheduler is not None else ()
    core = SEARCHERS[searcher].core(space, list(metrics), list(MODES), seed=seed, budget=trials,
                                    num_workers=concurrency, capped=False, constraints=constraints,
                                    fidelities=fidelities, **extra)
    # without dedup every proposal is new: a key that never repeats
    serial = iter(range(1 << 62))
    memory = ProposalMemory((lambda c: json.dumps(c, sort_keys=True)) if dedup else (lambda c: str(next(serial))))
    trace = Trace()
    for config, result in warm:
        tell_known = getattr(core, "tell_known", None)
        if tell_known is not None:
            tell_known(config, result)
        memory.finished[memory.key(config)] = dict(result)
    running: dict[str, list] = {}  # trial -> [config, curve, epochs done]
    paused: dict[str, list] = {}  # promotion: trials waiting at a rung
    launched = ended = used = proposals = 0
    exhausted = False
    observe = getattr(core, "observe", None)

    def tell(key: str, result, stopped: bool = False) -> None:
        t = time.perf_counter()
        core.tell(key, result, stopped=stopped)
        trace.ask_seconds += time.perf_counter() - t

    def ask(key: str):
        t = time.perf_counter()
        cfg = core.ask(key)
        trace.ask_seconds += time.perf_counter() - t
        trace.asks += 1
        return cfg

    def names():
        nonlocal proposals
        while True:
            proposals += 1
            yield f"p{proposals}"

    def launch() -> bool:
        """Resume a promoted trial, else start the next new configuration (the product's loop:
        ``ProposalMemory.propose``)."""
        nonlocal launched, exhausted
        promoted = scheduler.promotable(list(paused)) if paused and scheduler is not None else None
        if promoted is not None:
            running[promoted] = paused.pop(promoted)
            return True
        if exhausted or launched >= trials:
            return False
        got = memory.propose(ask, tell, names())
        if got.outcome != "new":
            exhausted = got.outcome == "exhausted"
            return False
        launched += 1
        memory.start(got.proposal, got.key)
        running[got.proposal] = [got.config, evaluate(got.config), 0]
        return True

    def end(key: str, cfg, point, stop: bool) -> None:
        nonlocal ended
        ended += 1
        result = None if stop else dict(zip(metrics, point))
        if result is not None:
            trace.finals.append(point)
            trace.configs.append(cfg)
            trace.feasible.append(constraints is None or constraints.feasible(result))
        tell(key, result, stopped=stop)  # stopped: PRUNED, as the product tells Optuna
        for waiting in memory.end(key, result)[0]:
            tell(waiting, result, stopped=stop)
        trace.epochs.append(used)
        finals = np.array([p for p, ok in zip(trace.finals, trace.feasible) if ok])
        trace.hv.append(hypervolume(finals, MODES, ref) if len(finals) else 0.0)

    while ended < trials and (max_epochs is None or used < max_epochs):
        while len(running) < concurrency and launch():
            pass
        if not running:
            break
        for key in list(running):  # one epoch of every running trial
            cfg, curve, done = running[key]
            done += 1
            used += 1
            running[key][2] = done
            point = [float(v) for v in curve[done - 1]]
            report = {**dict(zip(metrics, point)), EPOCH.name: done}
            if observe is not None:
                observe(key, report)
            decision = "continue"
            if scheduler is not None and done < epochs:
                feasible = constraints is None or constraints.feasible(report)
                decision = scheduler.on_result(key, done, point, feasible, paused=list(paused))
            if decision == PAUSE:
                paused[key] = running.pop(key)
                continue
            if decision != STOP and done < epochs:
                continue
            del running[key]
            end(key, cfg, point, decision == STOP)
    for key in list(paused):  # never promoted: ended at their rung
        cfg, curve, done = paused.pop(key)
        end(key, cfg, [float(v) for v in curve[done - 1]], True)
    trace.answered = memory.answered
    return trace


def paired_ratio(a: np.ndarray, b: np.ndarray, *, n_boot: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """mean(a) / mean(b) over paired seeds, with a 95 % percentile bootstrap interval (seeds
    resampled jointly, so the pairing is kept)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    boots = a[idx].mean(axis=1) / np.maximum(b[idx].mean(axis=1), 1e-300)
    return float(a.mean() / max(b.mean(), 1e-300)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


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
