"""The composition of a search, written once for every backend: how proposals, results and the
scheduler's decisions meet, without Ray.

:mod:`.dedup` answers a repeated configuration from memory; :mod:`.composition` holds the rules both
backends apply (an early-stopped trial's partial result never reaches the searcher as final, the
full-fidelity rule; an earlier search's results told first, warm start; the scheduler's decision on a
report); :mod:`.simulated` is the simulated backend (trials as learning curves, time in epochs) that
the benchmarks and tests drive. The Ray backend (:mod:`gatesearch.search.ray`) applies the same rules
in its Ray Tune adapters. Imports neither Ray nor MLflow (import-linter checks it).
"""
