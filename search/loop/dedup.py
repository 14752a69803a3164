"""Deduplication of proposals: a configuration the search already evaluated is not trained again.

Samplers over discrete or partly discrete spaces propose the same configuration repeatedly (TPE
proposed ~34 distinct configurations in 50 trials on the 640-point benchmark table). Training it
again costs a trial and tells the sampler nothing new (trials are seeded: the same resolved
configuration and seed give the same result up to floating-point nondeterminism). So a repeat
is answered from the search's own result for that configuration, told to the sampler as its
result, and not run: it is not a trial and is not charged against ``num_samples``.

Two configurations are the same when the parameters that have an effect for them are equal
(:meth:`Objective.active` of the resolved configuration, which includes ``seed``): a hash-gate
trial's ``k`` or an unused local-search budget does not make it different.

This module is Ray-free; :class:`gatesearch.search.ray.searcher.Deduplicated` puts it in front of a
Ray Tune searcher, and the simulated backend (:mod:`gatesearch.search.loop.simulated`) runs the same loop (:meth:`ProposalMemory.propose`) in
its simulated searches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from gatesearch.spaces import config_key, trial_configuration

#: consecutive repeats of finished configurations after which the space counts as exhausted
EXHAUSTED_AFTER = 1000


@dataclass(frozen=True)
class ConfigKey:
    """``config -> key``: the active parameters of the resolved configuration (``fixed`` values
    under the proposal), as canonical JSON. A configuration the objective rejects keys on its raw
    values (it fails as a trial). Picklable: Ray saves the searcher with it."""

    objective_name: str
    fixed: Mapping[str, Any] = field(default_factory=dict)
    #: the objective itself where its name is not registered (a space file's training function)
    objective: Any = field(default=None, compare=False)

    def __call__(self, config: Mapping[str, Any]) -> str:
        from gatesearch.objectives import get_objective

        merged = trial_configuration(self.fixed, config)
        objective = self.objective if self.objective is not None else get_objective(self.objective_name)
        try:
            merged = objective.active(objective.resolve(merged))
        except ValueError:
            pass
        return config_key(merged)


@dataclass(frozen=True)
class Proposal:
    """What :meth:`ProposalMemory.propose` came back with. ``outcome``: ``"new"`` (run ``config``;
    its ``key`` goes to :meth:`ProposalMemory.start`), ``"end"`` (the searcher answered with its
    end marker, ``config``), ``"exhausted"`` (:data:`EXHAUSTED_AFTER` repeats in a row) or
    ``"later"`` (the proposal names ran out with repeats only: ask again later)."""

    outcome: str
    proposal: str = ""
    config: Any = None
    key: str = ""


class ProposalMemory:
    """What the search has evaluated, keyed by configuration.

    ``finished``: key -> the final result (a trial that failed or stopped early records nothing:
    a repeat of it is run). ``running``: key -> the trial evaluating it now; a repeat of a running
    configuration waits for its result instead of running twice.
    """

    def __init__(self, key: Callable[[Mapping[str, Any]], str]):
        self.key = key
        self.finished: dict[str, dict[str, Any]] = {}
        self.running: dict[str, str] = {}  # key -> trial id
        self.waiting: dict[str, list[str]] = {}  # key -> proposals answered when its trial ends
        self.trial_key: dict[str, str] = {}  # trial id -> key
        self.answered = 0  # repeats answered from memory (finished or awaited)
        self.repeats_in_a_row = 0

    def classify(self, config: Mapping[str, Any]) -> tuple[str, str]:
        """(``"new"`` | ``"finished"`` | ``"running"``, key) of a proposal."""
        k = self.key(config)
        if k in self.finished:
            return "finished", k
        if k in self.running:
            return "running", k
        return "new", k

    def start(self, trial_id: str, k: str) -> None:
        self.running[k] = trial_id
        self.trial_key[trial_id] = k
        self.repeats_in_a_row = 0

    def wait(self, k: str, proposal: str) -> None:
        self.waiting.setdefault(k, []).append(proposal)
        self.answered += 1

    def repeat(self) -> bool:
        """Count an answered repeat of a finished configuration; True once the space looks
        exhausted (:data:`EXHAUSTED_AFTER` in a row)."""
        self.answered += 1
        self.repeats_in_a_row += 1
        return self.repeats_in_a_row >= EXHAUSTED_AFTER

    def end(self, trial_id: str, result: Mapping[str, Any] | None) -> tuple[list[str], dict[str, Any] | None]:
        """Trial ``trial_id`` ended with final ``result`` (None: failed or stopped early). Returns
        the waiting proposals to answer and the result to answer them with."""
        k = self.trial_key.pop(trial_id, None)
        if k is None:
            return [], None
        if self.running.get(k) == trial_id:
            del self.running[k]
        if result is not None:  # its numbers only (metrics, epoch): kept for the whole search and checkpointed
            result = {n: v for n, v in result.items() if isinstance(v, (int, float))}
            self.finished[k] = result
        return self.waiting.pop(k, []), result

    def propose(self, ask: Callable[[str], Any], answer: Callable[[str, Mapping[str, Any]], None],
                names: Iterable[str], is_end: Callable[[Any], bool] = lambda c: c is None) -> Proposal:
        """Ask the searcher (``ask(name)``) under each of ``names`` in turn until it proposes a
        configuration that is neither finished nor running. A repeat of a finished one is
        answered at once with its result (``answer(name, result)``); a repeat of a running one
        waits for that trial (:meth:`end` hands it back). The one loop behind both the Ray
        searcher (``tuner.Deduplicated``) and the benchmark's simulation."""
        for name in names:
            config = ask(name)
            if is_end(config):
                return Proposal("end", name, config)
            kind, k = self.classify(config)
            if kind == "new":
                return Proposal("new", name, config, k)
            if kind == "running":
                self.wait(k, name)
                continue
            answer(name, self.finished[k])
            if self.repeat():
                return Proposal("exhausted", name)
        return Proposal("later")

    def state(self) -> dict[str, Any]:
        return {"finished": self.finished, "answered": self.answered}

    def load(self, state: Mapping[str, Any]) -> None:
        """Resume: the finished results (running trials are re-run by Ray; their waiters were
        the searcher's pending proposals, which its own checkpoint dropped)."""
        self.finished = dict(state.get("finished", {}))
        self.answered = int(state.get("answered", 0))
