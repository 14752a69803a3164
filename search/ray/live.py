"""What the running search shares with the objects Ray restores from its saved experiment.

``Tuner.restore`` brings back the callbacks, the stopper, the scheduler and the searcher from their
pickled copies (``tuner.pkl`` and the experiment state), not the objects a resumed search would
hand it: Ray 2.60 has no public way to replace them (``Tuner.restore`` takes no run config). So the
live parts — the MLflow sink, the stop predicate, the experiment directory — are not carried by
those objects but held here, per driver process, and set by :func:`gatesearch.search.ray.fit` for
the duration of one ``Tuner.fit``; the restored copies read them.
"""

from __future__ import annotations

from typing import Any, Callable


class Live:
    """The running fit's live state (module-level: one fit at a time per driver process).

    Attributes:
        sink: receives trial events (:class:`~gatesearch.search.ray.callbacks.TrialSink`).
        experiment_dir: the experiment's absolute directory (state backups, MO-ASHA's rungs).
        predicate: the stop predicate (tracking gone, SIGINT/SIGTERM); ``fired``: whether it stopped the fit.
        deduplicated: the deduplicating searcher of this fit (Ray's restored copy on resume), for its count.
        scheduler: the promotion MO-ASHA scheduler of this fit (Ray's restored copy on resume), which
            :class:`~gatesearch.search.ray.searcher.UnpausedLimit` asks before a new trial.
    """

    sink: Any = None
    experiment_dir: str | None = None
    predicate: Callable[[], bool] | None = None
    fired: bool = False
    deduplicated: Any = None
    scheduler: Any = None

    @classmethod
    def start(cls, *, sink: Any, experiment_dir: str, predicate: Callable[[], bool] | None) -> None:
        cls.sink, cls.experiment_dir, cls.predicate, cls.fired = sink, experiment_dir, predicate, False
        cls.scheduler = None  # a promotion scheduler registers itself at its first scheduling step

    @classmethod
    def end(cls) -> None:
        cls.sink = cls.predicate = None
