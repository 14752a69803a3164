"""Warm start: the finished trials of an earlier search, told to a new search's searcher.

``gatesearch run space.yaml --warm-start <search dir | parent run id>`` reads the earlier search's
finished child runs from its tracking store, turns each one's logged parameters back into a
configuration of the *new* space, and hands the (configuration, result) pairs to the new search
before its first proposal: the searcher is told them as completed trials (they are not trained
and not charged against ``num_samples``) and deduplication knows them (a repeat is answered from
the earlier result). A trial that the new space cannot produce is skipped and counted, with the
reason: a parameter outside its new bounds or choices, a fixed value that changed, a parameter the
earlier search never recorded. The earlier search must have the same objective. The new parent
run links the old one (tags :data:`TAG_FROM`, :data:`TAG_FROM_URI`; params ``warm_start_trials``,
``warm_start_skipped``).

Ray-free; it reads MLflow through :class:`gatesearch.search.tracking.tracker.Tracker`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from gatesearch.search.lifecycle.manifest import MANIFEST, Manifest
from gatesearch.search.system.redact import shown, without_password
from gatesearch.spaces import Categorical, Fixed, Int, Space, trial_configuration

TAG_FROM = "gatesearch.warm_start_from"  # the earlier search's parent run id
TAG_FROM_URI = "gatesearch.warm_start_from_uri"  # ... and its tracking store
RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class WarmStart:
    """The earlier search's usable trials.

    Attributes:
        parent_run_id, tracking_uri: the earlier search's parent run and store.
        known: ``(configuration of the new space, result)`` of each usable finished trial.
        skipped: why each unusable finished trial was skipped -> how many.
    """

    parent_run_id: str
    tracking_uri: str
    known: tuple[tuple[dict[str, Any], dict[str, float]], ...] = ()
    skipped: Mapping[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        why = "; ".join(f"{n}: {reason}" for reason, n in self.skipped.items())
        return (f"warm start from search run {self.parent_run_id}: {len(self.known)} finished trials told to the "
                f"searcher" + (f", {sum(self.skipped.values())} outside the new space skipped ({why})"
                               if self.skipped else ""))


def _value(p, raw: str) -> tuple[Any, str]:
    """``raw`` (a parameter as MLflow stores it: a string) as a value of ``p``, or (None, why)."""
    if isinstance(p, Categorical):
        for c in p.choices:
            if str(c) == raw:
                return c, ""
        return None, "outside the new choices"
    if isinstance(p, Fixed):
        return (p.value, "") if str(p.value) == raw or _close(p.value, raw) else (None, "at another fixed value")
    try:
        v = int(float(raw)) if isinstance(p, Int) else float(raw)
    except ValueError:
        return None, "not a number"
    if not p.low <= v <= p.high:
        return None, "outside the new bounds"
    return v, ""


def _close(value: Any, raw: str) -> bool:
    try:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isclose(float(raw), value)
    except ValueError:
        return False


def configuration(space: Space, fixed: Mapping[str, Any], params: Mapping[str, str],
                  objective=None) -> tuple[dict | None, str]:
    """The configuration of ``space`` a child run's logged ``params`` describe, or (None, why).
    Walks the space in dependency order, so only the parameters active for it are read. A run logs
    only the parameters that had an effect (``Objective.active``): one the space searches but the run
    did not log (``k`` of a hash-gate trial) takes any value, if ``objective`` confirms it is inactive
    for this configuration too (it then changes nothing: the same configuration for deduplication)."""
    for name, value in fixed.items():
        if name in params and not (str(value) == params[name] or _close(value, params[name])):
            return None, f"{name} was {params[name]}, now fixed at {value}"
    out: dict[str, Any] = {}
    filled = []
    for name in space.order:
        if not space.is_active(name, out):
            continue
        p = space.params[name]
        if name not in params:
            if isinstance(p, Fixed):
                out[name] = p.value
                continue
            if objective is None:
                return None, f"{name} not in the earlier search"
            out[name] = _any_value(p, getattr(objective, "defaults", {}).get(name))
            filled.append(name)
            continue
        value, why = _value(p, params[name])
        if why:
            return None, f"{name} {why}"
        out[name] = value
    if filled:  # inactive for this configuration under the objective, or the earlier search lacked it
        try:
            active = objective.active(objective.resolve(trial_configuration(fixed, out)))
        except ValueError:
            active = set(filled)
        missing = [n for n in filled if n in active]
        if missing:
            return None, f"{missing[0]} not in the earlier search"
    broken = space.broken(out)
    if broken is not None:  # a configuration this space never proposes
        return None, f"breaks {broken.text}"
    return {n: out[n] for n in space.params if n in out}, ""


def _any_value(p, default: Any) -> Any:
    """A value of ``p``: ``default`` when it is one, else its first choice or lower bound."""
    if default is not None and not _value(p, str(default))[1]:
        return _value(p, str(default))[0]
    return p.choices[0] if isinstance(p, Categorical) else p.low


def source_run(source: str, tracking_uri: str, trust: bool = False) -> tuple[str, str, str]:
    """(parent run id, tracking URI, experiment or "") of ``source``: a search directory (or an output
    directory holding one search; refused if others could write it, unless ``trust``:
    :func:`~gatesearch.search.system.dir_guard.check_trusted`), or a parent run id in ``tracking_uri``."""
    p = Path(source).expanduser()
    if p.exists():
        p = p.resolve()
        dirs = [p] if (p / MANIFEST).exists() else sorted(m.parent for m in p.glob(f"ray/*/{MANIFEST}"))
        if len(dirs) != 1:
            raise ValueError(f"--warm-start {source}: " + (f"{len(dirs)} searches here; pass one of: "
                                                           + ", ".join(map(str, dirs)) if dirs else
                                                           f"no gatesearch search here (no {MANIFEST}); pass the "
                                                           f"search directory `gatesearch run` printed, or a "
                                                           f"parent run id"))
        from gatesearch.search.system.dir_guard import check_trusted

        check_trusted(dirs[0], trust=trust, what="run --warm-start")
        m = Manifest.read(dirs[0])
        # the manifest keeps no password: the store given to this search, if it is the same one, has it
        same = without_password(m.tracking_uri) == without_password(tracking_uri)
        return m.parent_run_id, tracking_uri if same else m.tracking_uri, m.experiment
    if RUN_ID.match(source):
        if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).exists():
            raise ValueError(f"--warm-start {source}: there is no tracking store at {shown(tracking_uri)} to find run "
                             f"{source} in; pass --tracking-uri of its store, or its search directory")
        return source, tracking_uri, ""
    raise ValueError(f"--warm-start {source}: neither a directory nor an MLflow run id (32 hex digits); pass "
                     f"the search directory `gatesearch run` printed, or the parent run id shown in MLflow")


def load_warm_start(source: str, *, space: Space, fixed: Mapping[str, Any], objective, tracking_uri: str,
                    trust: bool = False) -> WarmStart:
    """Read the earlier search ``source`` (see :func:`source_run`) and keep its finished trials
    that are configurations of ``space`` with every objective reported. Raises ``ValueError``
    naming the problem (an unknown run, another objective, a run that is not a search)."""
    from gatesearch.search.tracking.store import TAG_ROLE
    from gatesearch.search.tracking.tracker import Tracker

    parent, uri, _ = source_run(source, tracking_uri, trust)
    try:
        experiment, params, tags = Tracker.find_run(uri, parent)
    except ValueError as e:
        raise ValueError(f"--warm-start {source}: {e}; pass --tracking-uri of its store, or its search "
                         f"directory") from None
    if tags.get(TAG_ROLE) != "search":
        raise ValueError(f"--warm-start {source}: run {parent} is not a gatesearch search (parent) run")
    theirs = params.get("objective", "")
    if theirs != objective.name:
        raise ValueError(f"--warm-start {source}: that search optimised {theirs!r}, this one {objective.name!r}; "
                         f"a warm start needs the same objective")
    tracker = Tracker(uri, experiment)
    names = [m.name for m in objective.objectives]
    known, skipped = [], Counter()
    for rec in tracker.children(parent):
        if rec.status != "FINISHED":
            continue
        result = {k: v for k, v in rec.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if not all(n in result for n in names):
            skipped["not every objective reported"] += 1
            continue
        config, why = configuration(space, fixed, rec.params, objective)
        if config is None:
            skipped[why] += 1
            continue
        known.append((config, result))
    return WarmStart(parent, uri, tuple(known), dict(skipped))
