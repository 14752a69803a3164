"""Searcher state that survives a library upgrade: a core is saved as its recipe and its history.

A searcher core (:class:`~gatesearch.search.searchers.registry.SearchCore`) is saved with the experiment, and
``gatesearch resume`` continues from the saved copy. Pickling the core itself pickled live library
objects: Optuna's samplers and studies, Nevergrad's optimizers. Those change between releases and
may hold locks (Optuna 5.1's ``NSGAIISampler`` holds a ``threading.Lock``: ``cannot pickle
'_thread.lock' object``), so a release could break every search at its start, and a search saved by
one install could not be resumed by the next.

:class:`RecordedCore` wraps every core the registry builds. Its pickled state is plain data:

- the **recipe**: the searcher's registry name and its :class:`~gatesearch.search.searchers.registry.CoreRequest`
  (space, objectives, seed, budget, constraints: our own frozen dataclasses);
- the **history**: every call the core was given, in order (``ask`` with the configuration it
  returned, ``tell``, ``observe``, ``tell_known``, budget changes), with results reduced to their
  scalar entries;
- the library **versions** it was saved with.

Unpickling builds a fresh core from the recipe and replays the history. Seeded samplers are
deterministic given the same calls, so the replayed core is the original: it proposes what the
original would have proposed next. If a replayed ask proposes something else (another library
version samples differently), the history is replayed again with every ask forced to its recorded
configuration (a core's ``force(key, config)``): the restored core then knows every trial and result
exactly, its random state differs, and a warning names the versions that changed. A core that cannot
force raises :class:`SearcherRestoreError`, naming the versions and the way out (``--warm-start``).

The price is paid on restore only: the replay re-runs the sampler (for the model-based searchers,
one model fit per replayed proposal).
"""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any, Mapping

#: the libraries whose version decides what a core proposes
LIBRARIES = ("gatesearch", "optuna", "nevergrad", "botorch", "optuna-integration", "torch", "numpy", "scipy")
FORMAT = 1
log = logging.getLogger(__name__)


class SearcherRestoreError(RuntimeError):
    """A saved searcher cannot be rebuilt here (unknown searcher, another format, or a replay that
    diverged for a core that cannot be forced)."""


def library_versions() -> dict[str, str]:
    """Installed version of each library in :data:`LIBRARIES` (absent ones left out)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def version_changes(saved: Mapping[str, str], now: Mapping[str, str] | None = None) -> list[str]:
    """``"optuna 5.0.0 -> 5.1.0"`` for each library whose version differs from ``saved``."""
    now = library_versions() if now is None else now
    return [f"{n} {saved.get(n, 'absent')} -> {now.get(n, 'absent')}" for n in sorted(set(saved) | set(now))
            if saved.get(n) != now.get(n)]


def _scalar(v: Any) -> Any:
    item = getattr(v, "item", None)  # numpy scalars, 0-d arrays and tensors
    if item is not None and getattr(v, "ndim", 0) == 0 and getattr(v, "shape", ()) == ():
        try:
            v = item()
        except (TypeError, ValueError, RuntimeError):
            return _SKIP
    return v if v is None or isinstance(v, (bool, int, float, str)) else _SKIP


_SKIP = object()


def plain(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The scalar entries of a result (a Ray result also carries its config and bookkeeping dicts,
    which no core reads)."""
    if result is None:
        return None
    out = {}
    for k, v in result.items():
        v = _scalar(v)
        if v is not _SKIP:
            out[str(k)] = v
    return out


class RecordedCore:
    """A :class:`~gatesearch.search.searchers.registry.SearchCore` that records its calls and is pickled as
    recipe + history (see the module). Every attribute it does not define is the wrapped core's
    (``.inner``), so ``core.study`` or ``core.pareto_front()`` read the live core."""

    def __init__(self, name: str, request: Any, inner: Any):
        self._name, self._request, self.inner = name, request, inner
        self._events: list[tuple] = []

    # -- the SearchCore contract, recorded ------------------------------------------------------
    def ask(self, key: str) -> dict[str, Any] | None:
        config = self.inner.ask(key)
        self._events.append(("ask", key, None if config is None else dict(config)))
        return config

    def tell(self, key: str, result: Mapping[str, Any] | None, *, stopped: bool = False) -> bool:
        told = self.inner.tell(key, result, stopped=stopped)
        self._events.append(("tell", key, plain(result), bool(stopped)))
        return told

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        value = getattr(self.inner, name)  # AttributeError when the core lacks it (observe, tell_known)
        if name == "observe":
            def observe(key: str, result: Mapping[str, Any]) -> None:
                value(key, result)
                self._events.append(("observe", key, plain(result)))
            return observe
        if name == "tell_known":
            def tell_known(config: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
                told = value(config, result)
                self._events.append(("tell_known", dict(config), plain(result)))
                return told
            return tell_known
        return value

    @property
    def budget(self) -> int:
        return self.inner.budget  # AttributeError for a core without one: hasattr() is False

    @budget.setter
    def budget(self, n: int) -> None:
        self.inner.budget = n
        self._events.append(("budget", int(n)))

    @property
    def calls(self) -> int:
        """How many calls were recorded (what a restore replays)."""
        return len(self._events)

    # -- pickling: recipe + history ---------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"format": FORMAT, "searcher": self._name, "request": self._request, "events": list(self._events),
                "versions": library_versions()}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or state.get("format") != FORMAT:
            raise SearcherRestoreError(f"saved searcher state of an unknown format {state.get('format')!r} "
                                       f"(this gatesearch reads format {FORMAT})")
        self._name, self._request = state["searcher"], state["request"]
        events, saved = list(state["events"]), dict(state.get("versions", {}))
        try:
            self._replay(events, force=False)
        except _Diverged as d:
            changes = version_changes(saved)
            why = (f"library versions changed since it was saved ({', '.join(changes)})" if changes
                   else "the sampler is not deterministic here")
            if not callable(getattr(self.inner, "force", None)):
                raise SearcherRestoreError(
                    f"searcher {self._name!r} cannot be restored: replaying its {len(events)} saved calls proposed "
                    f"another configuration at proposal {d.key!r}: {why}. Resume with the install that saved it, "
                    "or start a new search that reuses every finished trial: gatesearch run <space file> "
                    "--warm-start <this search dir>") from None
            log.warning("searcher %r restored from its %d saved calls with every proposal as recorded, but its "
                        "random state differs from an uninterrupted search: %s", self._name, len(events), why)
            self._replay(events, force=True)

    def _replay(self, events: list[tuple], *, force: bool) -> None:
        from gatesearch.search.searchers.registry import SEARCHERS

        spec = SEARCHERS.get(self._name)
        if spec is None or spec.build is None:
            raise SearcherRestoreError(f"the saved searcher {self._name!r} is not registered here; registered: "
                                       f"{sorted(SEARCHERS)} (a plugin's searcher: list its module under plugins: "
                                       "in the space file)")
        self.inner, self._events = spec.build(self._request), []
        for event in events:
            kind = event[0]
            if kind == "ask":
                _, key, recorded = event
                if force and recorded is not None:
                    self.inner.force(key, recorded)
                    self._events.append(("ask", key, dict(recorded)))
                    continue
                got = self.ask(key)
                if got != recorded:
                    raise _Diverged(key)
            elif kind == "tell":
                self.tell(event[1], event[2], stopped=event[3])
            elif kind == "observe":
                self.observe(event[1], event[2])
            elif kind == "tell_known":
                self.tell_known(event[1], event[2])
            elif kind == "budget":
                self.budget = event[1]
            else:
                raise SearcherRestoreError(f"saved searcher state holds an unknown call {kind!r}")


class _Diverged(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key
