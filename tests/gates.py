"""The built-in gates, read from the registry: a test that covers every gate iterates these, so adding
a gate to models/gates/ touches no test file."""

from __future__ import annotations

from gatesearch.models.gates.registry import gate_configs


def builtin_gates() -> dict[str, type]:
    """Name -> config type of every gate that ships in ``gatesearch.models.gates`` (a test's or a
    user's plugin gate is left out)."""
    return {n: c for n, c in gate_configs().items() if c.__module__.startswith("gatesearch.models.gates.")}


#: their names, sorted (for ``pytest.mark.parametrize``)
BUILTIN_GATES = sorted(builtin_gates())
