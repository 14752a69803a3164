"""The torch-free registry of gate *configs*: name -> config dataclass.

A search space is checked against the gates' knobs (their config dataclasses), which must not
need PyTorch: ``gatesearch space validate`` answers in well under a second. The gates
themselves (``nn.Module`` s) are registered in :data:`gatesearch.models.gates.base.GATES`;
:func:`~gatesearch.models.gates.base.register_gate` registers the config here too, so a
user's gate needs one registration. Duplicate names with another config type are an error.
"""

from __future__ import annotations

import importlib

GATE_CONFIGS: dict[str, type] = {}

#: the built-in gates' config modules (torch-free), imported on first use
BUILTIN_CONFIG_MODULES = ("comet_config", "dselect_k_config", "dts_config", "hash_config", "softmax_config",
                          "topk_config")
_loaded = False


def register_gate_config(name: str, config_type: type) -> type:
    """Register ``config_type`` as gate ``name``'s config (idempotent for the same type)."""
    if GATE_CONFIGS.get(name, config_type) is not config_type:
        raise ValueError(f"gate {name!r} is already registered with config {GATE_CONFIGS[name].__name__}")
    GATE_CONFIGS[name] = config_type
    return config_type


def unregister_gate_config(name: str) -> None:
    GATE_CONFIGS.pop(name, None)


def gate_configs() -> dict[str, type]:
    """Every registered gate's config type (the built-ins loaded on first call), by name."""
    global _loaded
    if not _loaded:
        for mod in BUILTIN_CONFIG_MODULES:
            importlib.import_module(f"gatesearch.models.gates.{mod}")
        _loaded = True
    return dict(sorted(GATE_CONFIGS.items()))


def gate_config_names() -> list[str]:
    """Registered gate names, sorted."""
    return list(gate_configs())
