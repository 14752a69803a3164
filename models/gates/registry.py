"""The torch-free registry of gate *configs*: name -> config dataclass, and the scan that finds
the built-in gates.

A search space is checked against the gates' knobs (their config dataclasses), which must not
need PyTorch: ``gatesearch space validate`` answers in well under a second. The gates
themselves (``nn.Module`` s) are registered in :data:`gatesearch.models.gates.base.GATES`;
:func:`~gatesearch.models.gates.base.register_gate` registers the config here too, so a
user's gate needs one registration. Duplicate names with another config type are an error.

**Built-in gates are found, not listed.** :func:`scan_gate_modules` reads (without importing)
the modules of this package:

- a *config module* is one named ``<name>_config`` (torch-free; it registers its config with
  :func:`register_gate_config`);
- a *gate module* is one that registers a gate at its top level: a class decorated with
  ``@register_gate(...)`` (or a top-level ``register_gate(...)(cls)`` call). Its source is parsed
  with :mod:`ast`, so a docstring that shows the decorator does not count.

:func:`gate_configs` imports every config module, and every gate module without a
``<name>_config`` sibling: a gate written as **one file** (config dataclass, ``Gate`` subclass,
``@register_gate``) is found too, at the price of importing PyTorch when the configs are first read
(split the config into ``<name>_config.py`` to keep ``space validate`` torch-free, as the built-ins
do). :func:`~gatesearch.models.gates.base.gate_names` and ``build_gate`` import every gate module.
Anything else in the package (``base``, ``smooth``, ``local_search`` ...) is never imported by
the scan. A user's gate outside this package is imported by name: the space file's ``plugins:``.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from gatesearch._registry import Registry

GATE_CONFIGS: Registry[type] = Registry("gate config")

CONFIG_SUFFIX = "_config"
_loaded = False


@dataclass(frozen=True)
class GateModules:
    """The modules of a gates package, found by reading their source (nothing is imported).

    Attributes:
        configs: the ``<name>_config`` modules (torch-free configs), sorted.
        gates: the modules that register a gate at top level, sorted.
    """

    configs: tuple[str, ...]
    gates: tuple[str, ...]

    @property
    def for_configs(self) -> tuple[str, ...]:
        """What to import to register every gate's config: the config modules, then each one-file
        gate (a gate module without a ``<name>_config`` sibling; importing it imports PyTorch)."""
        return self.configs + tuple(g for g in self.gates if g + CONFIG_SUFFIX not in self.configs)


def _registers_gate(source: str) -> bool:
    """Whether ``source`` registers a gate at top level: a class decorated with
    ``@register_gate(...)`` (or ``@<module>.register_gate(...)``), or a statement
    ``register_gate(...)(cls)``. A file that does not parse counts (importing it shows the error)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return True

    def is_register(node: ast.AST) -> bool:
        if not isinstance(node, ast.Call):
            return False
        f = node.func
        return (isinstance(f, ast.Name) and f.id == "register_gate") or (
            isinstance(f, ast.Attribute) and f.attr == "register_gate")

    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef) and any(is_register(d) for d in stmt.decorator_list):
            return True
        if isinstance(stmt, (ast.Expr, ast.Assign)) and isinstance(stmt.value, ast.Call) and is_register(
                stmt.value.func):
            return True
    return False


def scan_gate_modules(directory: str | Path) -> GateModules:
    """The config and gate modules of the package in ``directory`` (see the module doc): every
    ``*.py`` module of it (``pkgutil``), except sub-packages and names starting with ``_``."""
    directory = Path(directory)
    configs, gates = [], []
    for info in pkgutil.iter_modules([str(directory)]):
        if info.ispkg or info.name.startswith("_"):
            continue
        if info.name.endswith(CONFIG_SUFFIX):
            configs.append(info.name)
            continue
        path = directory / f"{info.name}.py"
        source = path.read_text(encoding="utf-8") if path.is_file() else ""
        if "register_gate" in source and _registers_gate(source):  # the text check spares most parses
            gates.append(info.name)
    return GateModules(configs=tuple(sorted(configs)), gates=tuple(sorted(gates)))


@lru_cache(maxsize=1)
def builtin_gate_modules() -> GateModules:
    """:func:`scan_gate_modules` of this package (read once per process)."""
    return scan_gate_modules(Path(__file__).parent)


def import_builtin(modules: tuple[str, ...]) -> None:
    """Import ``gatesearch.models.gates.<m>`` for each of ``modules``."""
    for mod in modules:
        importlib.import_module(f"{__package__}.{mod}")


def register_gate_config(name: str, config_type: type) -> type:
    """Register ``config_type`` as gate ``name``'s config (idempotent for the same type)."""
    if GATE_CONFIGS.get(name, config_type) is not config_type:
        raise ValueError(f"gate {name!r} is already registered with config {GATE_CONFIGS[name].__name__}")
    return GATE_CONFIGS.register(name, config_type)


def unregister_gate_config(name: str) -> None:
    GATE_CONFIGS.unregister(name)


def gate_configs() -> dict[str, type]:
    """Every registered gate's config type (the built-ins found by the scan are loaded on the
    first call), by name."""
    global _loaded
    if not _loaded:
        import_builtin(builtin_gate_modules().for_configs)
        _loaded = True
    return dict(sorted(GATE_CONFIGS.items()))


def gate_config_names() -> list[str]:
    """Registered gate names, sorted."""
    return list(gate_configs())
