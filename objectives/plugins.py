"""A space file's ``plugins:``: the user's modules imported before anything reads a registry.

A plugin is a module that registers something when imported, typically a gate written in one
file (a frozen config dataclass, a ``Gate`` subclass, ``@register_gate("mygate", MyGateConfig)``)::

    plugins: [mygates]          # mygates.py beside the space file, or any importable module
    params:
      gate: {type: categorical, choices: [mygate, topk]}

It is imported on the driver (``search.validate`` does it before checking the space against the
objective's schema, so ``space validate`` knows the gate) and on every Ray worker, before the
trial's configuration is resolved. It must therefore be importable there: ``gatesearch run`` adds
the space file's folder and the working directory to the path of the local Ray instance; on a
cluster, install it on every node.
"""

from __future__ import annotations

from typing import Sequence

from gatesearch.objectives.base import UserImportError, import_user_module

#: the plugins this process has imported (a second call with them costs one set lookup each)
_IMPORTED: set[str] = set()


def import_plugins(modules: Sequence[str]) -> None:
    """Import each of ``modules`` (dotted module names), in order. Idempotent: a module this
    function imported before is skipped.

    Raises:
        UserImportError: a name that is not a dotted module name, a module that is not importable
            (how to make it so), or one that raises while importing (the exception and the user's
            file:line: their bug, not ours). ``message`` and ``fix`` are separate, so a space file's
            check shows them at its ``plugins:`` entry.
    """
    for module in modules:
        if module in _IMPORTED:
            continue
        if not isinstance(module, str) or not all(part.isidentifier() for part in module.split(".")):
            raise UserImportError(f"plugin {module!r}: not a module name",
                                  "write a dotted module name, e.g. mygates or mypkg.gates (no '.py', no ':attr')")
        import_user_module(module, f"plugin {module!r}")
        _IMPORTED.add(module)
