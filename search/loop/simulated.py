"""The simulated backend: a search's composition run against a known objective, time counted in epochs.

Trials do not run on Ray here: ``evaluate(config)`` returns a learning curve (a table lookup, a
surrogate model or a real training). What ``gatesearch run`` does is reproduced with the same parts:
the searcher is the registry's (:data:`~gatesearch.search.searchers.registry.SEARCHERS`, the same
cores behind Ray Tune), ``concurrency`` trials run at once (each epoch advances every running trial
by one; the next configuration is asked when a slot frees, so the searcher proposes while results are
pending, as with ``max_concurrent: 2``), repeats are answered from memory
(:class:`~gatesearch.search.loop.dedup.ProposalMemory`), an earlier search is told first
(:func:`~gatesearch.search.loop.composition.warm_start`), the scheduler decides on every report
(:func:`~gatesearch.search.loop.composition.decide`) and an early-stopped trial is told as stopped
without its partial result (:func:`~gatesearch.search.loop.composition.ending`).

The benchmarks in ``bench/`` and the tests drive it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from gatesearch.objectives.metrics import EPOCH, EPOCHS_TOTAL
from gatesearch.search.loop.composition import decide, ending, warm_start
from gatesearch.search.loop.dedup import ProposalMemory
from gatesearch.search.schedulers.moasha import MOASHA, PAUSE, STOP
from gatesearch.spaces import config_key

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
    unstuck: int = 0  # proposals drawn at random to unstick a GP or BoTorch sampler (OptunaCore.unstuck)

    def hv_at(self, trials: int) -> float:
        """Hypervolume after ``trials`` ended trials (the last value if the search ended sooner)."""
        return self.hv[min(trials, len(self.hv)) - 1] if self.hv else 0.0

    def hv_at_epochs(self, epochs: int) -> float:
        """Hypervolume once at most ``epochs`` epochs were trained."""
        i = int(np.searchsorted(self.epochs, epochs, side="right"))
        return self.hv[i - 1] if i else 0.0


@dataclass
class _Clock:
    """The simulated trials: running (config, curve, epochs done), paused at a rung, and the counts."""

    running: dict[str, list] = field(default_factory=dict)
    paused: dict[str, list] = field(default_factory=dict)
    launched: int = 0
    ended: int = 0
    used: int = 0  # epochs trained
    exhausted: bool = False


def simulate(evaluate: Callable[[Mapping], Sequence[Sequence[float]]], space, searcher: str, *, seed: int,
             trials: int, ref: Sequence[float], epochs: int, concurrency: int = 2, dedup: bool = True,
             moasha: bool | Mapping = False, metrics: Sequence[str] = ("accuracy", "macs_per_sample"),
             nevergrad_optimizer: str | None = None, constraints=None, warm=(), rung_model: bool = False,
             scheduler=None, max_epochs: int | None = None) -> Trace:
    """Run searcher ``searcher`` for ``trials`` trials on ``evaluate``; return its :class:`Trace`.
    ``evaluate(config)`` returns ``epochs`` rows of (objective, cost). ``constraints`` (a
    :class:`~gatesearch.search.config.constraints.Constraints` over ``metrics``) are told to the
    searcher as a search tells them; the trace's hypervolume is then of the feasible results only.
    ``warm``: (configuration, result) pairs of an earlier search, told first as ``gatesearch run
    --warm-start`` tells them; not in the trace.

    ``moasha``: True for MO-ASHA with grace 1 and eta 3, or the keyword arguments of
    :class:`~gatesearch.search.schedulers.moasha.MOASHA` (``promote``, ``brackets``, ``grace``,
    ``eta``); ``scheduler``: another object with MOASHA's ``on_result``/``promotable``/``milestones``
    (a benchmark's anchor). ``rung_model``: the searcher also learns from rung results
    (:mod:`~gatesearch.search.searchers.rung_model`). A promoted trial resumes where it paused (from
    its checkpoint): its epochs are counted once. ``max_epochs``: stop once that many were trained."""
    from gatesearch.search.front.pareto import hypervolume
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
    memory = ProposalMemory(config_key if dedup else (lambda c: str(next(serial))))
    trace, clock = Trace(), _Clock()
    warm_start(core, memory, warm)
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

    proposals = iter(f"p{n}" for n in range(1, 1 << 62))

    def launch() -> bool:
        """Resume a promoted trial, else start the next new configuration (deduplicated:
        ``ProposalMemory.propose``, as the Ray backend's ``Deduplicated``)."""
        promoted = scheduler.promotable(list(clock.paused)) if clock.paused and scheduler is not None else None
        if promoted is not None:
            clock.running[promoted] = clock.paused.pop(promoted)
            return True
        if clock.exhausted or clock.launched >= trials:
            return False
        got = memory.propose(ask, tell, proposals)
        if got.outcome != "new":
            clock.exhausted = got.outcome == "exhausted"
            return False
        clock.launched += 1
        memory.start(got.proposal, got.key)
        clock.running[got.proposal] = [got.config, evaluate(got.config), 0]
        return True

    def end(key: str, cfg, point, done: int) -> None:
        clock.ended += 1
        told = ending({**dict(zip(metrics, point)), EPOCH.name: done, EPOCHS_TOTAL.name: epochs})
        result = None if told.stopped else dict(zip(metrics, point))
        if result is not None:
            trace.finals.append(point)
            trace.configs.append(cfg)
            trace.feasible.append(constraints is None or constraints.feasible(result))
        # every report was observed as it came (the Ray backend observes the partial one here: Ray
        # does not pass the report a trial is stopped on to the searcher)
        tell(key, result, stopped=told.stopped)  # stopped: PRUNED
        for waiting in memory.end(key, result)[0]:  # repeats proposed while it ran: told the same
            tell(waiting, result, stopped=told.stopped)
        trace.epochs.append(clock.used)
        finals = np.array([p for p, ok in zip(trace.finals, trace.feasible) if ok])
        trace.hv.append(hypervolume(finals, MODES, ref) if len(finals) else 0.0)

    while clock.ended < trials and (max_epochs is None or clock.used < max_epochs):
        while len(clock.running) < concurrency and launch():
            pass
        if not clock.running:
            break
        for key in list(clock.running):  # one epoch of every running trial
            cfg, curve, done = clock.running[key]
            done += 1
            clock.used += 1
            clock.running[key][2] = done
            point = [float(v) for v in curve[done - 1]]
            report = {**dict(zip(metrics, point)), EPOCH.name: done}
            if observe is not None:
                observe(key, report)
            decision = "continue"
            if scheduler is not None and done < epochs:
                decision = decide(scheduler, key, report, metrics, constraints, paused=list(clock.paused))
            if decision == PAUSE:
                clock.paused[key] = clock.running.pop(key)
                continue
            if decision != STOP and done < epochs:
                continue
            del clock.running[key]
            end(key, cfg, point, done)
    for key in list(clock.paused):  # never promoted: ended at their rung
        cfg, curve, done = clock.paused.pop(key)
        end(key, cfg, [float(v) for v in curve[done - 1]], done)
    trace.answered = memory.answered
    trace.unstuck = getattr(getattr(core, "inner", core), "unstuck", 0)
    return trace
