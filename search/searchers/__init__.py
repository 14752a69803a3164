"""Ray-free ask/tell searchers: the cores that propose configurations.

:mod:`.registry` is the one registry (``SEARCHERS``, ``register_searcher``), :mod:`.optuna_core` the
core over an Optuna sampler, :mod:`.nevergrad_mo` the multi-objective Nevergrad core;
:mod:`.recorded` makes every core pickle as its recipe and history, :mod:`.rung_model` lets a core
learn from rung results. Imports neither Ray nor MLflow (import-linter checks it).
"""


def __getattr__(name: str):
    """The flat layout's ``gatesearch.search.searchers`` module was ``searchers/registry.py`` (a saved search's pickles name it)."""
    from gatesearch.search import old_attribute

    return old_attribute("searchers", name, ('registry',))
