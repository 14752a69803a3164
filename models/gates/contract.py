"""What a gate's *config* promises: the values a search labels and logs, derived by the config
itself (torch-free, so ``gatesearch space validate`` and the driver never import PyTorch for it).

A gate config is a frozen dataclass whose searchable fields are knobs (:mod:`~gatesearch.models.knobs`).
Besides its fields it answers one question, :meth:`GateConfig.experts_per_row`: how many experts
one row (sample or token) is dispatched to, at most, at evaluation, in a layer of ``n_experts``
experts. That number is the ``k`` of a trial's run name (``topk n8 k2``), its front table and its
``k_effective`` parameter, so a top-1 gate is labelled ``k1`` whatever its knobs are called.

Optionally it also says what else a trial should log about it: a method
``derived(self, n_experts) -> Mapping[str, int | float | str]`` (e.g. COMET's
``{"tree_depth_effective": 3}``).

Configs written before this contract, or a user's config that skips it, still work, through the
two functions below (the only readers of these methods):

- :func:`experts_per_row` falls back to the config's ``k`` field (checked against ``n_experts``)
  and, without one, to ``n_experts`` (a gate that does not say is counted as dense);
- :func:`derived_values` falls back to no extra values.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable


@runtime_checkable
class GateConfig(Protocol):
    """A registered gate's config (every built-in one implements it; see the module doc)."""

    def experts_per_row(self, n_experts: int) -> int:
        """The most experts a row is dispatched to at evaluation, in a layer of ``n_experts``
        experts (``1 <= result <= n_experts``): Top-k ``k``, hash ``1``, softmax ``n_experts``.

        Raises:
            ValueError: when this config cannot route over ``n_experts`` experts (e.g. ``k`` larger
                than ``n_experts``), naming the field.
        """
        ...  # pragma: no cover - contract


def check_k(k: int, n_experts: int) -> None:
    """The one check of a ``k`` field against the layer.

    Raises:
        ValueError: ``k=5 exceeds n_experts=4`` when ``k > n_experts``.
    """
    if k > n_experts:
        raise ValueError(f"k={k} exceeds n_experts={n_experts}")


def experts_per_row(config: Any, n_experts: int) -> int:
    """``config.experts_per_row(n_experts)``; for a config without that method, its ``k`` field
    (checked against ``n_experts``) or, without one, ``n_experts``.

    Raises:
        ValueError: the config cannot route over ``n_experts`` experts (its own message, e.g.
            ``k=5 exceeds n_experts=4``).
    """
    if isinstance(config, GateConfig):
        return int(config.experts_per_row(n_experts))
    k = getattr(config, "k", None)
    if isinstance(k, int) and not isinstance(k, bool):
        check_k(k, n_experts)
        return k
    return n_experts


def derived_values(config: Any, n_experts: int) -> dict[str, Any]:
    """The extra values ``config`` says a trial should log (its optional ``derived(n_experts)``),
    or ``{}``."""
    derived = getattr(config, "derived", None)
    if derived is None:
        return {}
    values: Mapping[str, Any] = derived(n_experts)
    return dict(values)
