"""The scheduler registry: every scheduler a space file may name (``search: {scheduler: NAME}``), in one place.

A scheduler is a :class:`SchedulerSpec` whose ``build`` makes its Ray-free core for one search, or
None for FIFO (every trial runs to its full budget). A core keeps MO-ASHA's rung bookkeeping
(:class:`~gatesearch.search.schedulers.moasha.MOASHA` or a subclass): the Ray adapter
(:class:`~gatesearch.search.ray.scheduler.MOASHAScheduler`) and the simulated backend
(:mod:`gatesearch.search.loop.simulated`) drive it through ``on_result``, ``promotable`` and its rung
records. A new scheduler is one :func:`register_scheduler` call; settings validation, the CLI and the
docs read :data:`SCHEDULERS`. Nothing heavy is imported until a core is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from gatesearch._registry import Registry


@dataclass(frozen=True)
class SchedulerRequest:
    """What a scheduler is built for: the objectives' ``modes`` and ``metrics`` (in order), the
    full budget ``max_epochs`` of a trial, and the search's ``settings``
    (:class:`~gatesearch.search.config.settings.SearchSettings`)."""

    modes: tuple[str, ...]
    metrics: tuple[str, ...]
    max_epochs: int
    settings: Any


@dataclass(frozen=True)
class SchedulerSpec:
    """One registered scheduler.

    Attributes:
        name: what ``search: {scheduler: NAME}`` says.
        doc: one line for the docs and the CLI.
        title: the name in messages (default: ``name``).
        build: the core for one search (None: FIFO, every trial to its full budget).
        settings: the ``search:`` settings only this scheduler reads; set away from their default
            while another scheduler is chosen, they are an error naming this one.
        check: problems of the chosen settings against the trial budget, each ``(setting, problem,
            fix)`` (reported at the setting's line of the space file).
    """

    name: str
    doc: str
    build: Callable[[SchedulerRequest], Any]
    settings: tuple[str, ...] = ()
    check: Callable[[Any, int], Sequence[tuple[str, str, str]]] | None = None
    title: str = ""


#: name -> :class:`SchedulerSpec`
SCHEDULERS: Registry[SchedulerSpec] = Registry(
    "scheduler", how="gatesearch.search.schedulers.registry.register_scheduler(SchedulerSpec(...))")


def register_scheduler(spec: SchedulerSpec) -> SchedulerSpec:
    """Add ``spec`` under its name (a taken name is an error)."""
    return SCHEDULERS.register(spec.name, spec)


def _moasha(r: SchedulerRequest):
    from gatesearch.search.schedulers.moasha import MOASHA

    s = r.settings
    return MOASHA(modes=list(r.modes), max_t=r.max_epochs, grace=s.moasha_grace, eta=s.moasha_eta,
                  reference=s.reference_for(list(r.metrics)), brackets=s.moasha_brackets,
                  promote=s.moasha_mode == "promote")


def _check_moasha(s, budget: int) -> list[tuple[str, str, str]]:
    """A rung below the full budget, and no more brackets than rungs + 1 (the last runs every trial
    to the end)."""
    from gatesearch.search.schedulers.moasha import rung_epochs

    rungs = rung_epochs(s.moasha_grace, s.moasha_eta, budget)
    if not rungs:
        return [("moasha_grace", f"MO-ASHA has no rung below the full budget of {budget} epochs (the first rung "
                                 f"is at moasha_grace = {s.moasha_grace})",
                 f"set moasha_grace below {budget}, or train longer (epochs)")]
    if s.moasha_brackets > len(rungs) + 1:
        return [("moasha_brackets", f"{s.moasha_brackets} brackets, but with {budget} epochs, grace {s.moasha_grace} "
                                    f"and eta {s.moasha_eta:g} the rungs are at {rungs} epochs: bracket s starts at "
                                    f"the s-th rung, so at most {len(rungs) + 1} (the last runs every trial to the end)",
                 f"set moasha_brackets to at most {len(rungs) + 1}")]
    return []


register_scheduler(SchedulerSpec("fifo", "every trial runs to its full budget", build=lambda r: None))
register_scheduler(SchedulerSpec(
    "moasha", "multi-objective asynchronous successive halving: stops (or pauses) dominated trials at rungs",
    build=_moasha, settings=("moasha_rung_model", "moasha_brackets", "moasha_mode"), check=_check_moasha,
    title="MO-ASHA"))
