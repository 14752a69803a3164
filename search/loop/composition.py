"""The rules of a search's composition, one definition each, applied by both backends.

- :func:`ending` - the full-fidelity rule: what a searcher is told when a trial ends;
- :func:`warm_start` - an earlier search's results, told before the first proposal;
- :func:`decide` - the scheduler's decision on one report (constraints, objective order).

The Ray backend applies them in its Ray Tune adapters (:class:`~gatesearch.search.ray.searcher.FullFidelityOnly`,
:func:`~gatesearch.search.ray.run_tuner`, :class:`~gatesearch.search.ray.scheduler.MOASHAScheduler`);
the simulated backend (:mod:`.simulated`) applies them in its loop. Deduplication is
:class:`~gatesearch.search.loop.dedup.ProposalMemory`'s, for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol, Sequence

from gatesearch.objectives.metrics import EPOCH, is_partial
from gatesearch.search.loop.dedup import ProposalMemory
from gatesearch.search.schedulers.moasha import CONTINUE


class Scheduler(Protocol):
    """What the loop asks of a scheduler (MO-ASHA, or a benchmark's anchor)."""

    milestones: Sequence[int]

    def on_result(self, trial_id: str, epoch: int, values: Sequence[float], feasible: bool = True,
                  paused: Sequence[str] = ()) -> str:
        """``continue``, ``stop`` or ``pause`` for the trial's report at ``epoch``."""

    def promotable(self, paused: Iterable[str], mark: bool = True) -> str | None:
        """A paused trial to resume now, or None."""


@dataclass(frozen=True)
class Ending:
    """How a trial's end is told to the searcher (:func:`ending`).

    ``result``: the final result told (None: none); ``stopped``: ended early, told as stopped
    (Optuna: PRUNED); ``partial``: the lower-fidelity result withheld (never told as final)."""

    result: Mapping[str, Any] | None
    stopped: bool
    partial: Mapping[str, Any] | None = None


def ending(result: Mapping[str, Any] | None, error: bool = False) -> Ending:
    """The full-fidelity rule: a trial that ended before its full budget (its last result is partial,
    ``epoch < epochs_total``, or it has none: it ended while paused at a rung) is told as *stopped*,
    without its result; an errored trial is told without a result (Optuna: FAIL); a finished one, its
    result.

    Pruned, not failed: Optuna's TPE puts pruned trials in its "bad" group, so it learns to propose
    away from configurations MO-ASHA stopped; a FAIL is ignored, so TPE kept proposing what was then
    stopped again (on ``bench/search_quality.py``'s surrogate, TPE + MO-ASHA spent 400 trials on
    560-720 epochs and never reached random search's 100-trial hypervolume on most seeds)."""
    if not error and (result is None or is_partial(result)):
        return Ending(None, True, result)
    return Ending(None if error else result, False)


def warm_start(core: Any, memory: ProposalMemory | None,
               warm: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> int:
    """Tell an earlier search's (configuration, result) pairs before the first proposal: to the core
    (``tell_known``, where it has one: it learns from them) and to the deduplication ``memory`` (their
    numbers: a repeat of one is answered, not trained). Nothing is trained or charged against the
    budget. Returns how many the core took."""
    tell_known = getattr(core, "tell_known", None)
    told = 0
    for config, result in warm:
        told += bool(tell_known is not None and tell_known(config, result))
        if memory is not None:
            memory.finished[memory.key(config)] = {k: v for k, v in result.items() if isinstance(v, (int, float))}
    return told


def decide(scheduler: Scheduler, trial_id: str, report: Mapping[str, Any], metrics: Sequence[str],
           constraints: Any = None, paused: Sequence[str] = ()) -> str:
    """The scheduler's decision on one report: ``continue`` for a report that lacks an objective or
    the epoch; else its objective vector (in ``metrics`` order) at its epoch, feasible when it meets
    the outcome ``constraints`` (an infeasible one goes after every feasible one at a rung).
    ``paused``: the trials waiting at a rung now (promotion)."""
    if EPOCH.name not in report or not all(m in report for m in metrics):
        return CONTINUE
    feasible = constraints is None or constraints.feasible(report)
    return scheduler.on_result(trial_id, int(report[EPOCH.name]), [float(report[m]) for m in metrics], feasible,
                               paused=list(paused))
