"""The Pareto front: non-dominated sorting and hypervolume (:mod:`.pareto`), the live front of a
running search (:mod:`.live`), its report as a table, CSV and Markdown (:mod:`.report`) and figures
(:mod:`.figure`). Imports neither Ray nor MLflow (import-linter checks it).
"""


def __getattr__(name: str):
    """The flat layout's ``gatesearch.search.front`` module was ``front/live.py`` (a saved search's pickles name it)."""
    from gatesearch.search import old_attribute

    return old_attribute("front", name, ('live',))
