"""The one registry type of the extension points: gates, gate configs, objectives, searchers, data sets.

A :class:`Registry` is a ``dict`` from name to entry (every package reads it as one: ``name in R``,
``R[name]``, iteration) with the three things a hand-rolled registry got wrong in different ways:
a duplicate name is an error (re-registering the very same entry is not), a lookup of an unknown
name says what is known with a did-you-mean, and a registration can be undone. Pure standard
library: every package may import it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from gatesearch._hints import did_you_mean

T = TypeVar("T")


class Registry(dict, Generic[T]):
    """Name -> entry of one kind of extension (``kind``: what an entry is, for messages)."""

    def __init__(self, kind: str, how: str = ""):
        super().__init__()
        self.kind, self.how = kind, how

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name``. The same entry again is a no-op; another under a taken name
        is an error."""
        self[name] = entry
        return entry

    # Every way to write a dict goes through the duplicate check: ``R[name] = x`` is ``register``.
    def __setitem__(self, name: str, entry: T) -> None:
        if name in self and self[name] is not entry:
            raise ValueError(f"{self.kind} {name!r} is already registered; unregister it first to replace it")
        super().__setitem__(name, entry)

    def update(self, *args, **kwargs) -> None:
        for name, entry in dict(*args, **kwargs).items():
            self[name] = entry

    def setdefault(self, name: str, entry: T = None) -> T:
        if name not in self:
            self[name] = entry
        return self[name]

    def __ior__(self, other):
        self.update(other)
        return self

    def unregister(self, name: str) -> None:
        self.pop(name, None)

    def lookup(self, name: str) -> T:
        """The entry of ``name``; an unknown name raises ``ValueError`` naming the known ones."""
        if name not in self:
            raise ValueError(f"unknown {self.kind} {name!r}{did_you_mean(name, self)}; registered: {sorted(self)}"
                             + (f" ({self.how})" if self.how else ""))
        return self[name]

    def names(self) -> list[str]:
        return sorted(self)
