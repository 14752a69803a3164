"""A plain training function as an objective (the convention of Optuna and Ray Tune).

A space file names the function and declares what it optimises::

    objective: my_model:train           # def train(config, report): ...
    metrics: {accuracy: max, macs_per_sample: min}

``train(config, report)`` gets the trial's configuration (every key of the space's ``params`` and
``fixed``) and calls ``report({...})`` once per epoch with that epoch's metrics; it may return
final metrics. Optional keyword parameters are passed when the function declares them:
``device`` (``"cuda"`` or ``"cpu"``), and ``restore``/``save`` for per-epoch checkpoints (the
protocol of :mod:`gatesearch.objectives.checkpoint`: ``save(state)`` after each epoch, before
``report``; a restarted trial gets its last state as ``restore`` and continues after its epoch).

The function's module is imported on the driver and on every Ray worker (installed, or its folder
on ``PYTHONPATH``; ``gatesearch run`` adds the space file's folder and the working directory).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Sequence

from gatesearch.objectives.base import Objective, import_attribute
from gatesearch.objectives.metrics import METRICS, Metric
from gatesearch.objectives.schema import ParamRule, ParamSchema

#: columns shown for a user objective that names none: at most this many searched parameters
MAX_DEFAULT_COLUMNS = 6


class FunctionObjective(Objective):
    """``train(config, report)`` named ``path`` (``package.module:function``), optimising
    ``metrics`` (name -> ``"max"``/``"min"``) over the configuration keys ``keys``.

    Pickled by its path (the function is imported again where it runs)."""

    def __init__(self, path: str, metrics: Mapping[str, str], keys: Sequence[str],
                 front_columns: Sequence[str] = ()):
        self.name = path
        self.objectives = tuple(Metric(n, mode, METRICS[n].description if n in METRICS else "declared in the space file")
                                for n, mode in metrics.items())
        self.schema = ParamSchema(rules={k: ParamRule("any", "a key of your training function's config") for k in keys})
        self.defaults = {}
        self.front_columns = tuple(front_columns)[:MAX_DEFAULT_COLUMNS]
        self._fn: Callable[..., Any] | None = None
        self.function  # noqa: B018 - imported now, so a bad path fails at validation, not in a trial

    def run_label(self, config: Mapping[str, Any]) -> str:
        """``d_model=16 n_experts=8 k=1 lr=0.0056``: the front columns, floats to 3 digits."""
        return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.summary(config).items())

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fn": None, "_resolved": {}}

    @property
    def function(self) -> Callable[..., Any]:
        if self._fn is None:
            fn = import_attribute(self.name, what="training function")
            if isinstance(fn, Objective) or (isinstance(fn, type) and issubclass(fn, Objective)):
                raise ValueError(f"{self.name!r} is an objectives.Objective: it declares its own metrics; "
                                 f"remove `metrics:` from the space file (it is for a plain training function)")
            if not callable(fn):
                raise ValueError(f"{self.name!r} is a {type(fn).__name__}, not a function; name a function "
                                 f"`def train(config, report)`")
            params = inspect.signature(fn).parameters
            positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            star = any(p.kind == p.VAR_POSITIONAL for p in params.values())
            if not positional and not star:
                raise ValueError(f"{self.name!r} takes no configuration: write it as `def train(config, report)`")
            if len(positional) < 2 and not star and "report" not in params:
                raise ValueError(f"{self.name!r} takes the configuration but no `report`: the search learns each "
                                 f"epoch's metrics only through it; write it as `def train(config, report)` and "
                                 f"call report({{{', '.join(repr(n) + ': ...' for n in (m.name for m in self.objectives))}}}) "
                                 f"once per epoch")
            self._fn = fn
        return self._fn

    def _accepts(self, name: str) -> bool:
        params = inspect.signature(self.function).parameters
        return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())

    @property
    def checkpoints(self) -> bool:  # type: ignore[override]
        return self._accepts("restore") and self._accepts("save")

    def run(self, config: Mapping[str, Any], *, report=None, device: str = "cpu", **kwargs: Any):
        """Call the function with the configuration (a :class:`TrialConfig`: a key it lacks is an
        error that says how to add it), the report, and the keywords it declares."""
        params = inspect.signature(self.function).parameters
        extra = {k: v for k, v in {"device": device, **kwargs}.items() if self._accepts(k)}
        if "report" in params and params["report"].kind != inspect.Parameter.POSITIONAL_ONLY:
            return self.function(TrialConfig(config), report=report, **extra)
        return self.function(TrialConfig(config), report, **extra)


class MissingConfigKey(KeyError):
    """``config[key]`` of a key the trial's configuration does not have."""

    def __str__(self) -> str:  # KeyError's own str() is the key's repr only
        return self.args[0] if self.args else ""


class TrialConfig(dict):
    """A trial's configuration as a training function gets it: a plain ``dict``, except that a
    missing key names itself, the keys there are, and where to add it."""

    def __missing__(self, key: Any):
        raise MissingConfigKey(f"config[{key!r}]: the trial's configuration has no {key!r} (it has "
                               f"{', '.join(sorted(map(str, self)))}); add {key} under fixed: (a constant) or "
                               f"params: (searched) in the space file, or use config.get({key!r}, <default>)")

    def __reduce__(self):  # pickles (and copies) as a plain dict
        return (dict, (dict(self),))
