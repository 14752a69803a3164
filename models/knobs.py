"""Searchable knobs: one home for a config field's flat key, bounds, default and doc.

A component's frozen config dataclass declares each searchable field with :func:`knob`. The
field's metadata says how it appears in a *flat* configuration (what a searcher proposes and
a space file names): the flat key, its kind, bounds or choices, a one-line doc, and a unit
conversion when the flat value is in epochs but the field counts optimisation steps. An
objective builds its schema from these declarations (the gate registry lists every gate's
config type), and :func:`from_flat` builds the config object from a flat configuration, so
a new gate's knobs are searchable the moment it is registered, with nothing to copy.

    @dataclass(frozen=True)
    class MyGateConfig:
        k: int = knob(2, "experts per row", low=1, high=256)
        decay_steps: int = knob(1000, "epochs to decay", flat="my_decay_epochs", unit="epochs",
                                flat_default=4.0, low=1e-3, high=1e4)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

META = "gatesearch.knob"
KINDS = {"int": int, "float": float, "bool": bool, "str": str}
UNITS = ("", "epochs", "fraction")


@dataclass(frozen=True)
class Knob:
    """How one config field appears in a flat configuration.

    Attributes:
        kind: ``int``, ``float``, ``bool`` or ``str`` (of the flat value).
        doc: one line, shown by ``gatesearch space validate`` and in errors.
        low, high: inclusive bounds of the flat value (numbers).
        choices: allowed values (``str`` knobs).
        flat: the flat key (default: the field name).
        unit: ``""`` (the flat value is the field's), ``"epochs"`` (the flat value is in epochs,
            the field counts steps: ``ceil(value * steps_per_epoch)``, at least 1 when value > 0) or ``"fraction"``
            (a fraction of the phase's ``total_steps``: 0 -> -1, "from the first update"; 1 ->
            None, "never"; else ``ceil(value * total_steps)``).
        default: the flat default (the field's default, or ``flat_default`` for unit knobs).
        when: the knob only has an effect when these other flat keys take one of these values
            (e.g. ``w_load`` needs ``noisy: true``); otherwise the field keeps its default.
    """

    kind: str
    doc: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    flat: str = ""
    unit: str = ""
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def active(self, flat: Mapping[str, Any]) -> bool:
        """Whether the knob has an effect in the flat configuration ``flat``."""
        return all(flat.get(key) in values for key, values in self.when)


def knob(default: Any, doc: str, *, kind: str | None = None, low: float | None = None, high: float | None = None,
         choices: tuple[Any, ...] | None = None, flat: str = "", unit: str = "", flat_default: Any = None,
         when: Mapping[str, tuple[Any, ...]] | None = None) -> Any:
    """A dataclass field that is a searchable knob (see :class:`Knob`)."""
    if unit not in UNITS:
        raise ValueError(f"knob {flat or doc!r}: unit must be one of {UNITS}, got {unit!r}")
    if unit and flat_default is None:
        raise ValueError(f"knob {flat or doc!r}: a unit knob needs flat_default (its default in {unit})")
    value = flat_default if unit else default
    kind = kind or _kind_of(value)
    meta = Knob(kind=kind, doc=doc, default=value, low=low, high=high, choices=choices, flat=flat, unit=unit,
                when=tuple((k, tuple(v)) for k, v in (when or {}).items()))
    return dataclasses.field(default=default, metadata={META: meta})


def _kind_of(value: Any) -> str:
    for name, py in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, py):
            return name
    raise ValueError(f"knob default {value!r}: give kind= (int, float, bool or str)")


def knobs(config_type: type) -> dict[str, tuple[str, Knob]]:
    """``flat key -> (field name, Knob)`` of ``config_type``'s searchable fields, in field order."""
    out = {}
    for f in dataclasses.fields(config_type):
        meta = f.metadata.get(META)
        if meta is not None:
            out[meta.flat or f.name] = (f.name, meta)
    return out


def from_flat(config_type: type, flat: Mapping[str, Any], *, steps_per_epoch: int = 1,
              total_steps: int | None = None, **fixed: Any) -> Any:
    """``config_type`` built from a flat configuration: each knob read from its flat key
    (converted from epochs to steps where it says so; inactive knobs keep their default),
    ``fixed`` for fields that are not knobs (e.g. a seed the caller owns; entries naming no field
    of this type are ignored, so one call serves every registered type). Keys of ``flat`` that
    are not this type's knobs are ignored (a flat configuration holds every component's keys)."""
    names = {f.name for f in dataclasses.fields(config_type)}
    kwargs: dict[str, Any] = {k: v for k, v in fixed.items() if k in names}
    for key, (name, k) in knobs(config_type).items():
        if key not in flat or not k.active(flat):
            continue
        value = flat[key]
        if k.unit == "epochs":
            value = max(1 if value > 0 else 0, math.ceil(value * steps_per_epoch))
        elif k.unit == "fraction":
            if total_steps is None:
                raise ValueError(f"{key}: a fraction of the phase needs total_steps")
            value = -1 if value <= 0 else (None if value >= 1 else math.ceil(value * total_steps))
        kwargs[name] = value
    return config_type(**kwargs)


def flat_le(config_type: type) -> tuple[tuple[str, str], ...]:
    """``(a, b)`` flat-key pairs with ``a <= b`` required (the class's ``flat_le``)."""
    return tuple(getattr(config_type, "flat_le", ()))


def flat_defaults(config_type: type) -> dict[str, Any]:
    """``flat key -> default`` of ``config_type``'s knobs."""
    return {key: k.default for key, (_, k) in knobs(config_type).items()}
