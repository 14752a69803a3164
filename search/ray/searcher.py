"""Ray Tune searchers over the project's ask/tell cores: one adapter for every searcher of the
registry (:data:`gatesearch.search.searchers.registry.SEARCHERS`), and the two wrappers every search puts in
front of it: :class:`Deduplicated` (a configuration already evaluated is answered from memory) and
:class:`FullFidelityOnly` (an early-stopped trial's partial result never reaches the searcher).

The adapter is the only path from a searcher to Ray: the simulated backend
(:mod:`gatesearch.search.loop.simulated`, which the benchmarks drive) runs the same cores with the same
rules, so what they measure is what ``gatesearch run`` runs.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from typing import Any, Callable, Mapping

from ray.tune.search import Searcher

from gatesearch.search.loop.composition import ending
from gatesearch.search.loop.dedup import ProposalMemory
from gatesearch.search.ray.live import Live
from gatesearch.search.searchers.registry import SearchCore


class CoreSearcher(Searcher):
    """Ray Tune adapter over an ask/tell core (:class:`~gatesearch.search.searchers.registry.SearchCore`):
    Optuna's samplers, Nevergrad, and any searcher registered with ``register_searcher``.

    A trial that ends without a result and without an error was stopped early (see
    :class:`FullFidelityOnly`): the core is told so (``stopped``; Optuna records it as PRUNED); an
    errored trial is told without a result (Optuna: FAIL). The core is pickled with the experiment,
    so ``gatesearch resume`` continues with everything it was told."""

    def __init__(self, core: SearchCore):
        super().__init__(metric=None, mode=None)
        self.core = core

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # metrics and modes are the core's; Tune's single metric/mode is not used

    def suggest(self, trial_id: str):
        config = self.core.ask(trial_id)
        return Searcher.FINISHED if config is None else config

    def extend(self, n: int) -> None:
        """``n`` more proposals (``gatesearch extend``): a core that stops after its budget gets it."""
        if hasattr(self.core, "budget"):
            self.core.budget += n

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        observe = getattr(self.core, "observe", None)  # optional (SearchCore): e.g. constraint violations
        if observe is not None:
            observe(trial_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.core.tell(trial_id, None if error else result, stopped=not error and result is None)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"core": self.core}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:  # our own checkpoint, written by save()
            self.core = pickle.load(f)["core"]


class Deduplicated(Searcher):
    """Wraps a searcher so a configuration the search already evaluated is not run again
    (:mod:`gatesearch.search.loop.dedup`): the proposal is answered with the stored result (or, if the
    configuration is running now, with its result when it ends) and the searcher asked again.
    Answered repeats never become Ray trials, so they are not charged against ``num_samples``.

    The wrapped searcher sees its own proposal ids: the first proposal of a Ray trial has the
    trial's id, repeats asked for the same trial get ``<trial id>~<n>``."""

    #: proposals asked in one suggest() call before Ray is told to ask again later
    PER_CALL = 64

    def __init__(self, inner: Searcher, key: Callable[[Mapping[str, Any]], str]):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.memory = inner, ProposalMemory(key)
        self.alias: dict[str, str] = {}  # Ray trial id -> the inner searcher's proposal id
        Live.deduplicated = self

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.inner.set_max_concurrency(max_concurrent)

    def extend(self, n: int) -> None:
        self.inner.extend(n)

    def suggest(self, trial_id: str):
        names = (trial_id if n == 0 else f"{trial_id}~{n}" for n in range(self.PER_CALL))
        got = self.memory.propose(self.inner.suggest,
                                  lambda proposal, result: self.inner.on_trial_complete(proposal, result, error=False),
                                  names, is_end=lambda c: c is None or c == Searcher.FINISHED)
        if got.outcome == "new":
            self.memory.start(trial_id, got.key)
            self.alias[trial_id] = got.proposal
            return got.config
        if got.outcome == "end":
            return got.config
        if got.outcome == "exhausted":
            logging.getLogger(__name__).warning(
                "the searcher proposed %d already evaluated configurations in a row: the space looks "
                "exhausted, so the search ends here", self.memory.repeats_in_a_row)
            return Searcher.FINISHED
        return None  # only repeats so far: Ray asks again (with a new trial id) on its next step

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(self.alias.get(trial_id, trial_id), result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.inner.on_trial_complete(self.alias.pop(trial_id, trial_id), result, error=error)
        waiting, final = self.memory.end(trial_id, None if error or result is None else result)
        for proposal in waiting:  # repeats of this configuration proposed while it ran: told the same
            self.inner.on_trial_complete(proposal, final, error=error if final is None else False)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)
        with open(checkpoint_path, "rb") as f:
            inner = f.read()
        with open(checkpoint_path, "wb") as f:
            pickle.dump({DEDUP_STATE: self.memory.state(), "inner": inner, "alias": self.alias}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:  # our own checkpoint, written by save()
            state = pickle.load(f)
        if not (isinstance(state, dict) and DEDUP_STATE in state):  # written without deduplication
            self.inner.restore(checkpoint_path)
            return
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(state["inner"])
        try:
            self.inner.restore(tmp.name)
        finally:
            os.unlink(tmp.name)
        self.memory.load(state[DEDUP_STATE])
        self.alias = dict(state.get("alias", {}))
        Live.deduplicated = self  # Ray's restored copy is the one that answers from now on


#: the key of the deduplication state in a searcher checkpoint
DEDUP_STATE = "gatesearch.dedup"


class FullFidelityOnly(Searcher):
    """Wraps a searcher so early-stopped trials never reach it as final results
    (:func:`~gatesearch.search.loop.composition.ending`, the full-fidelity rule): their
    lower-fidelity result is withheld and the trial is reported as ended without a result and
    without an error, which :class:`CoreSearcher` tells its core as stopped (Optuna: ``PRUNED``)."""

    def __init__(self, inner: Searcher):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self.final: list[str] = []
        self.withheld: list[str] = []

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.inner.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str):
        return self.inner.suggest(trial_id)

    def extend(self, n: int) -> None:
        self.inner.extend(n)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        told = ending(result, error)  # the full-fidelity rule (None: ended while paused at a rung)
        if told.stopped:
            self.withheld.append(trial_id)
            # Ray does not pass the result a scheduler stops a trial on to on_trial_result: it is
            # observed here (the stopped trial's constraint violations, a rung model's rung result)
            if told.partial is not None:
                self.inner.on_trial_result(trial_id, told.partial)
            self.inner.on_trial_complete(trial_id, None, error=False)  # Optuna: PRUNED
        else:
            if not error:
                self.final.append(trial_id)
            self.inner.on_trial_complete(trial_id, result, error=error)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)


class UnpausedLimit(Searcher):
    """``max_concurrent`` for promotion MO-ASHA (:class:`~gatesearch.search.ray.scheduler.MOASHAScheduler`
    with ``promote``): Ray's own limiter counts a paused trial as running, so after
    ``max_concurrent`` pauses no trial would ever start. This one counts the trials running or
    about to (the scheduler's count), and starts no new trial while a paused one is promoted and
    waits for a worker. Until the scheduler's first scheduling step it starts nothing."""

    def __init__(self, inner: Searcher, max_concurrent: int):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.max_concurrent = inner, max_concurrent

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True  # limited here: Ray adds no ConcurrencyLimiter

    def suggest(self, trial_id: str):
        scheduler = Live.scheduler
        if scheduler is None or scheduler.promotion_ready() or scheduler.unpaused() >= self.max_concurrent:
            return None  # Ray asks again on its next step
        config = self.inner.suggest(trial_id)
        if isinstance(config, dict):
            scheduler.started()
        return config

    def extend(self, n: int) -> None:
        self.inner.extend(n)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        self.inner.on_trial_complete(trial_id, result, error=error)

    def save(self, checkpoint_path: str) -> None:
        self.inner.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.inner.restore(checkpoint_path)
