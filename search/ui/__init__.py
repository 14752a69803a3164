"""The terminal: the ``gatesearch`` command (:mod:`.cli`, typer) and what it prints
(:mod:`.console`, :mod:`.progress`, rich). The only room that imports ``typer`` or ``rich``.
"""
