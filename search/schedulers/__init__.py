"""Schedulers that stop or pause trials early, without Ray: MO-ASHA and its variants
(:mod:`.moasha`; the registry ``SCHEDULERS`` and ``register_scheduler`` in :mod:`.registry`). :mod:`gatesearch.search.ray.scheduler` adapts them to Ray Tune.
Imports neither Ray nor MLflow (import-linter checks it).
"""
