"""Search: the rooms that turn a space file into a Pareto front.

- :mod:`.config` - the plan of a search (space file sections, settings, constraints, resources);
- :mod:`.searchers` - Ray-free ask/tell searchers and their registry;
- :mod:`.schedulers` - MO-ASHA and its variants, Ray-free;
- :mod:`.front` - Pareto ranks, hypervolume, the live front and its report;
- :mod:`.tracking` - MLflow (the only room that imports it) and the Optuna mirror;
- :mod:`.ray` - Ray Tune and the Ray runtime (the only room that imports ``ray``);
- :mod:`.lifecycle` - run, resume, extend, interrupt, fail fast, warm start, load;
- :mod:`.system` - locks, owner-only folders, passwords, services;
- :mod:`.ui` - the ``gatesearch`` command (the only room that imports typer or rich).

The import contracts between them are in ``pyproject.toml`` (import-linter) and
``docs/architecture.md`` describes them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: modules that moved into rooms, old name -> new name: a search saved by the flat layout (its
#: pickled searcher, scheduler and settings name their classes' modules) still resumes. The three
#: old modules whose names are rooms now (searchers, front, tracking) resolve their old attributes
#: in that room's ``__init__``.
MOVED = {f"gatesearch.search.{old}": f"gatesearch.search.{new}" for old, new in {
    "validate": "config.validate", "settings": "config.settings", "constraints": "config.constraints",
    "resources": "config.resources", "recorded": "searchers.recorded", "rung_model": "searchers.rung_model",
    "nevergrad_mo": "searchers.nevergrad_mo", "dedup": "loop.dedup", "moasha": "schedulers.moasha",
    "pareto": "front.pareto", "front_report": "front.report", "figure": "front.figure",
    "store": "tracking.store", "outbox": "tracking.outbox", "optuna_mirror": "tracking.optuna_mirror",
    "trial_sink": "tracking.trial_sink", "ray_state": "ray.state", "runner": "lifecycle.runner",
    "interrupt": "lifecycle.interrupt", "failures": "lifecycle.failures", "trial_error": "lifecycle.trial_error",
    "warm_start": "lifecycle.warm_start", "dry_run": "lifecycle.dry_run", "manifest": "lifecycle.manifest",
    "load": "lifecycle.load", "dir_guard": "system.dir_guard", "file_lock": "system.file_lock",
    "redact": "system.redact", "services": "system.services", "cli": "ui.cli", "console": "ui.console",
    "progress": "ui.progress"}.items()}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module name as its new module (the same module object, not a copy)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        self._spec = module.__spec__  # importlib sets __spec__ to the old name's: put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec


def old_attribute(room: str, name: str, modules: tuple[str, ...]):
    """For a room's ``__getattr__``: ``name`` of the flat layout's module that had the room's name,
    looked up in the room's ``modules``."""
    for m in modules:
        module = importlib.import_module(f"gatesearch.search.{room}.{m}")
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module 'gatesearch.search.{room}' has no attribute {name!r}")


if not any(isinstance(f, _Moved) for f in sys.meta_path):
    sys.meta_path.append(_Moved())
