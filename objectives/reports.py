"""What a trial reports, checked: the ``report`` an objective's ``run`` is handed.

An objective calls ``report(metrics)`` once per epoch and may return final metrics. Built-in and
user objectives go through the same checks, so a user's mistake is a failed trial with the reason,
never a silently wrong result:

- ``epoch``: if a report has no ``epoch`` key, the reports are numbered 1, 2, ... (continuing
  after a restored checkpoint's epoch); a trial is then never taken for one stopped early.
- every optimised metric (the objective's ``objectives``) must be a finite number wherever it
  appears, in a report or in the returned metrics: NaN or inf fails the trial
  (:class:`NonFiniteMetric`), naming the metric, its value and the epoch;
- the last report, with the returned metrics, must hold every optimised metric
  (:class:`MissingMetric`).

Returned metrics that the last report lacks (e.g. a final ``test_accuracy``) are sent once more
with that last epoch; values the last report already had are kept as reported.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping, Sequence

from gatesearch.objectives.metrics import EPOCH


class ObjectiveOutputError(ValueError):
    """An objective reported something the search cannot use (the trial fails with this reason)."""


class NonFiniteMetric(ObjectiveOutputError):
    """An optimised metric was NaN or infinite."""


class MissingMetric(ObjectiveOutputError):
    """A finished trial never reported one of its optimised metrics."""


class EpochReports:
    """The ``report`` callable handed to :meth:`Objective.run`: checks each epoch's metrics, then
    passes them to ``send``.

    Args:
        objectives: names of the optimised metrics (checked finite, required at the end).
        send: where checked metrics go (the search: Ray Tune's report).
        first_epoch: the number of the first epoch this run reports (after a restored
            checkpoint of epoch e: e + 1).
    """

    def __init__(self, objectives: Sequence[str], send: Callable[[dict[str, Any]], None], first_epoch: int = 1):
        self.objectives, self.send = tuple(objectives), send
        self.next_epoch = int(first_epoch)
        self.seen_at: dict[str, int] = {}  # optimised metric -> the last epoch that reported it
        self.last: dict[str, Any] | None = None

    def __call__(self, metrics: Mapping[str, Any]) -> None:
        if not isinstance(metrics, Mapping):
            raise ObjectiveOutputError(f"report() takes a dict of metric name -> number, got "
                                       f"{type(metrics).__name__} {metrics!r:.80}")
        result = {k: _plain(k, v) for k, v in metrics.items()}
        if EPOCH.name in result:
            epoch = _whole_number(result[EPOCH.name])
            if epoch is None or epoch < 1:
                raise ObjectiveOutputError(f"report(): '{EPOCH.name}' must be a whole number >= 1 (the epoch "
                                           f"just finished, 1-based), got {result[EPOCH.name]!r}; or leave it out "
                                           f"and the reports are numbered 1, 2, ...")
            result[EPOCH.name] = epoch
        else:  # numbered from the report calls
            result[EPOCH.name] = self.next_epoch
        self._check_finite(result, f"at epoch {result[EPOCH.name]}")
        self.next_epoch = result[EPOCH.name] + 1
        self.last = result
        self.seen_at.update({n: result[EPOCH.name] for n in self.objectives if n in result})
        self.send(result)

    def finish(self, returned: Any) -> None:
        """The objective's ``run`` returned ``returned`` (final metrics or None): check it, send
        what the last report lacked, and make sure every optimised metric was reported."""
        if returned is not None and not isinstance(returned, Mapping):
            raise ObjectiveOutputError(f"run() must return a dict of final metrics or None, got "
                                       f"{type(returned).__name__} {returned!r:.80}")
        returned = {k: _plain(k, v) for k, v in (returned or {}).items()}
        if self.last is None:
            if not returned:
                raise MissingMetric(f"the trial reported nothing: call report({{...}}) once per epoch (or return "
                                    f"the final metrics) with {', '.join(self.objectives)}")
            self(returned)
            returned = {}
        self._check_finite(returned, "in the metrics run() returned")
        new = {k: v for k, v in returned.items() if k not in self.last}
        if new:
            self.last = {**self.last, **new}
            self.send(dict(self.last))
        missing = [n for n in self.objectives if n not in self.last]
        earlier = [n for n in missing if n in self.seen_at]
        if earlier:
            raise MissingMetric(f"the last report (epoch {self.last[EPOCH.name]}) lacks "
                                + ", ".join(f"{n!r} (last reported at epoch {self.seen_at[n]})" for n in earlier)
                                + f": the last report() (or the returned metrics) must hold every optimised metric "
                                  f"({', '.join(self.objectives)})")
        if missing:
            raise MissingMetric(f"the trial never reported {', '.join(map(repr, missing))}: each of the optimised "
                                f"metrics ({', '.join(self.objectives)}) must be in the last report() (or in "
                                f"the returned metrics); got {sorted(k for k in self.last if k != EPOCH.name)}")

    def _check_finite(self, metrics: Mapping[str, Any], where: str) -> None:
        for name in self.objectives:
            if name not in metrics:
                continue
            value = metrics[name]
            try:
                if isinstance(value, (str, bytes, bool)):  # float("0.9") works, but "0.9" is no number
                    raise TypeError(type(value).__name__)
                number = float(value)
            except (TypeError, ValueError):
                raise ObjectiveOutputError(f"optimised metric {name!r} {where} is {type(value).__name__} "
                                           f"{value!r:.80}, not a number") from None
            if not math.isfinite(number):
                raise NonFiniteMetric(f"optimised metric {name!r} is {value!r} {where}: the trial is failed "
                                      f"(a diverged training, or a metric computed on nothing?); it is kept off "
                                      f"the front")


def _plain(name: Any, value: Any) -> Any:
    """A reported value as the search keeps it: a number, text, a bool, or a list/dict of them (e.g.
    an early-exit objective's operating points) as it is; a 0-d torch tensor, numpy scalar or 0-d
    array as its Python number (``.item()``); a tensor or array of several values, or any other
    object, is an :class:`ObjectiveOutputError` naming the key."""
    if value is None or isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return value
    item = getattr(value, "item", None)
    shape = getattr(value, "shape", None)
    if callable(item) and shape is not None and tuple(shape) == ():
        return item()  # a CUDA tensor is copied to the host here
    what = f"{type(value).__module__}.{type(value).__name__}".replace("builtins.", "")
    if shape is not None:
        what += f" of shape {tuple(shape)}"
    raise ObjectiveOutputError(f"report(): {name!r} is a {what}, not a number: report one number per key, e.g. "
                               f"float({name}) or {name}.item() for a one-element tensor (a 0-d tensor or a numpy "
                               f"scalar is taken as it is)")


def _whole_number(value: Any) -> int | None:
    """``value`` as an int if it is a finite whole number (``3``, ``3.0``, ``numpy.int64(3)``), else
    None (a bool, a string, NaN, inf, 1.5)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return int(number) if math.isfinite(number) and number == int(number) else None
