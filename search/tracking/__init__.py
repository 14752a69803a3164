"""What a search records: the only room that imports ``mlflow``.

:mod:`.store` is the tracking contract (tags, records; no MLflow), :mod:`.tracker` its MLflow
implementation, :mod:`.outbox` buffers writes while the tracking server is away, :mod:`.trial_sink`
turns trial events into child runs and the parent's front, :mod:`.optuna_mirror` mirrors the searcher's
trials into an Optuna storage for optuna-dashboard.
"""


def __getattr__(name: str):
    """The flat layout's ``gatesearch.search.tracking`` module was ``tracking/tracker.py`` (a saved search's pickles name it)."""
    from gatesearch.search import old_attribute

    return old_attribute("tracking", name, ('tracker',))
