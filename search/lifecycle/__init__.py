"""A search from start to end: run, resume, extend, interrupt, fail fast, warm start.

:mod:`.runner` is the public entry (``run_search``, ``resume_search``, ``extend_search``) and
:mod:`.drive` the part that runs one search once its folder and stores are open; :mod:`.manifest`
is a search dir's saved recipe, :mod:`.interrupt` turns signals into a resumable stop,
:mod:`.failures` stops a search whose trials keep failing, :mod:`.warm_start` tells a searcher an
earlier search's results, :mod:`.dry_run` runs one trial in-process (``gatesearch try``) and
:mod:`.load` reads a finished search into pandas (``load_search``).
"""
