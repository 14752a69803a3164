"""The plan of a search: what a space file and its overrides ask for, checked once.

:mod:`.validate` reads a space file into a :class:`~gatesearch.search.config.validate.Plan`-ready form
(the space, the objective, the ``search:`` settings, ``constraints:`` and ``resources:``), each mistake
named with its file and line; :mod:`.settings` holds every setting's default and bounds (one registry);
:mod:`.constraints` and :mod:`.resources` parse their sections. Imports neither Ray nor MLflow.
"""
