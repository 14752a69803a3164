"""Live progress of a running search, in the terminal.

:class:`SearchProgress` receives the same trial events as the tracking sink (it is a
:class:`~gatesearch.search.ray.callbacks.TrialSink`, fed on the driver's event loop) and shows: trials
finished / running / failed / stopped early / infeasible, of the budget; elapsed and estimated remaining
time; the current front's size and hypervolume; the best value of each objective; and each
running trial's epoch. On a terminal it is a ``rich`` live panel; otherwise (CI logs, files) it
prints one plain line per event, so a two-hour cluster search is never silent.

It keeps its own small :class:`~gatesearch.search.front.live.LiveFront` (an O(|front|) update per
finished trial) rather than reading the tracking sink's, which lives on another thread.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Iterable, Mapping, TextIO

import numpy as np

from gatesearch.objectives import Objective
from gatesearch.objectives.metrics import EPOCH, EPOCHS_TOTAL, is_partial
from gatesearch.search.config.constraints import Constraints
from gatesearch.search.front.live import LiveFront
from gatesearch.search.lifecycle.trial_error import error_summary
from gatesearch.search.tracking.store import TAG_TRIAL
from gatesearch.spaces import trial_configuration

#: the logger of Tune's controller, which logs every failed trial with its whole traceback
#: ("Trial task failed for trial ...", ~60 lines)
RAY_TRIAL_ERRORS = "ray.tune.execution.tune_controller"


def _without_trial_tracebacks(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Trial task failed for trial")


def _duration(s: float) -> str:
    s = int(max(0, s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class SearchProgress:
    """Counts and front of a running search, shown live (``rich``) or as plain lines.

    Args:
        objective: the search's objective (names, directions, run labels).
        total: the budget (``num_samples``).
        fixed: the space's fixed values (to name trials).
        live: a ``rich`` live panel (a terminal) or plain lines; default: whether ``stream`` is a tty.
        stream: where plain lines go (default stdout).
        done: trials already finished before this driver (a resumed search).
        reference: returns the search's hypervolume reference point once it is fixed (the
            tracking sink's, so the live hypervolume is the number logged and printed at the end);
            until then the same rule is applied to the trials finished so far.
        earlier: ``(trial id, objective values, why infeasible or "")`` of the trials finished
            before this driver (a resumed search's front, so the live front and hypervolume are of
            the whole search).
        constraints: the search's outcome constraints; a finished trial outside them is counted
            as infeasible, says why, and is kept off the live front.
        run_name: a trial's MLflow child run name, once the tracking sink has created it (named
            in a failed trial's line, with where its full traceback is).
        paused: returns the trials waiting at a MO-ASHA rung now (promotion mode): counted and
            shown apart from the running ones.

    While it is shown, Ray's own report of a failed trial (its whole traceback, logged by Tune's
    controller) is left out: the trial's line says what failed, and the traceback is the child
    run's ``error.txt`` artifact.
    """

    def __init__(self, objective: Objective, total: int, *, fixed: Mapping[str, Any] | None = None,
                 live: bool | None = None, stream: TextIO | None = None, done: int = 0,
                 reference: Callable[[], np.ndarray | None] | None = None,
                 earlier: Iterable[tuple[str, Mapping[str, Any], str]] = (),
                 run_name: Callable[[str], str | None] | None = None, constraints: Constraints | None = None,
                 paused: Callable[[], Iterable[str]] | None = None):
        self.objective, self.total, self.fixed = objective, total, dict(fixed or {})
        self.names = tuple(m.name for m in objective.objectives)
        self.modes = tuple(m.mode for m in objective.objectives)
        self.stream = stream or sys.stdout
        self.live_mode = self.stream.isatty() if live is None else live
        self.front = LiveFront(self.names, self.modes)
        self.finished, self.failed, self.stopped, self.previous = 0, 0, 0, done
        self.running: dict[str, list] = {}  # trial id -> [label, epoch, epochs_total]
        self.labels: dict[str, str] = {}
        self.reference = reference or (lambda: None)
        self.interrupted = False  # set by the driver when a signal stopped the search
        self.stopping = lambda: False  # set by the driver: whether the search is stopping (no new trials)
        self.run_name = run_name or (lambda trial_id: None)
        self.constraints = constraints or Constraints()
        self.paused = paused or (lambda: [])
        self.infeasible = 0
        for trial_id, values, why in earlier:
            self.front.add(trial_id, trial_id, values, {}, infeasible=why)
            self.infeasible += bool(why)
        self.t0 = time.monotonic()
        self._live = None

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> "SearchProgress":
        logging.getLogger(RAY_TRIAL_ERRORS).addFilter(_without_trial_tracebacks)
        if self.live_mode:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self.render(), console=Console(file=self.stream), refresh_per_second=2, transient=False)
            self._live.__enter__()
        else:
            self._line(f"search started: {self.total} trials of {self.objective.name}"
                       + (f" ({self.previous} finished before)" if self.previous else ""))
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger(RAY_TRIAL_ERRORS).removeFilter(_without_trial_tracebacks)
        if self._live is not None:
            self._live.update(self.render())
            self._live.__exit__(*exc)
            self._live = None
        elif self.interrupted:
            self._line("search interrupted: " + self.summary())
        else:
            self._line("search ended: " + self.summary())

    def _pending(self) -> str:
        """'pending', explained the first time only (a line per trial event repeated it)."""
        if getattr(self, "_explained", False):
            return "pending"
        self._explained = True
        return "pending (its reference point is fixed after a few trials)"

    # -- TrialSink ----------------------------------------------------------------------------
    def on_start(self, trial_id: str, config: Mapping[str, Any]) -> None:
        if self.stopping():  # Ray may start a trial it had in flight; it stops at once: no line for it
            self.running.setdefault(trial_id, [self._label(trial_id, config), 0, 0])
            return
        again = trial_id in self.labels  # e.g. promoted by MO-ASHA: resumes from its checkpoint
        label = self._label(trial_id, config)
        self.running.setdefault(trial_id, [label, 0, 0])
        self._event(f"trial {label} {'resumed' if again else 'started'}")

    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        state = self.running.setdefault(trial_id, [self._label(trial_id, result.get("config")), 0, 0])
        state[1], state[2] = int(result.get(EPOCH.name, state[1])), int(result.get(EPOCHS_TOTAL.name, state[2]))
        self._refresh()

    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None:
        label = self.running.pop(trial_id, [self.labels.get(trial_id, trial_id)])[0]
        values = " ".join(f"{n}={result[n]:,.6g}" for n in self.names if isinstance(result.get(n), (int, float)))
        if is_partial(result):
            self.stopped += 1
            self._event(f"trial {label} stopped early at epoch {result.get(EPOCH.name)}: {values}")
            return
        self.finished += 1
        why = self.constraints.why(result) if self.constraints else ""
        self.infeasible += bool(why)
        on_front = self.front.add(trial_id, trial_id, result, {}, infeasible=why)
        self._event(f"trial {label} finished: {values}" + (" (on the front)" if on_front else "")
                    + (f" (infeasible: {why})" if why else ""))

    def on_error(self, trial_id: str, error: str) -> None:
        """One line: the trial's own exception (not Ray's wrapper) and where its traceback is."""
        label = self.running.pop(trial_id, [self.labels.get(trial_id, trial_id)])[0]
        self.failed += 1
        run = self.run_name(trial_id)
        where = f"MLflow run {run!r}" if run else f"its MLflow run (tag {TAG_TRIAL}={trial_id})"
        self._event(f"trial {label} FAILED: {error_summary(error)} (full traceback: {where}, artifact error.txt)")

    def on_retry(self, trial_id: str, failures: int) -> None:
        self._event(f"trial {self.labels.get(trial_id, trial_id)} retried (failure {failures})")

    # -- rendering ----------------------------------------------------------------------------
    def _label(self, trial_id: str, config: Mapping[str, Any] | None) -> str:
        if trial_id not in self.labels:
            short = trial_id.rsplit("_", 1)[-1]
            try:
                words = self.objective.run_label(self.objective.resolve(trial_configuration(self.fixed, config or {})))
            except ValueError:
                words = ""
            self.labels[trial_id] = f"{words} ({short})" if words else short
        return self.labels[trial_id]

    def best(self) -> dict[str, float]:
        """The best value of each objective over the finished trials."""
        vals = self.front.front_values()
        if not len(vals):
            return {}
        return {n: float(vals[:, j].max() if m == "max" else vals[:, j].min())
                for j, (n, m) in enumerate(zip(self.names, self.modes))}

    def hypervolume(self) -> float | None:
        """The front's hypervolume w.r.t. the search's reference point, the tracking sink's (the
        number logged to MLflow and printed at the end); None until that point is fixed (after
        ``front_every`` finished trials, or at the end): a hypervolume against a provisional point
        would move both ways and match nothing logged."""
        ref = self.reference()
        if ref is None:
            return None
        return self.front.hypervolume(ref) if len(self.front) else 0.0

    def summary(self) -> str:
        done = self.finished + self.stopped + self.failed
        elapsed = time.monotonic() - self.t0
        eta = elapsed / done * (self.total - self.previous - done) if done else None
        hv = self.hypervolume()
        running = "to continue on `gatesearch resume`" if self.interrupted else "running"
        best = ", ".join(f"{n} {v:,.6g}" for n, v in self.best().items())
        paused = set() if self.interrupted else set(self.paused())
        waiting = len(paused)
        return (f"{self.previous + self.finished}/{self.total} finished, {len(set(self.running) - paused)} {running}, "
                + (f"{waiting} paused at a rung, " if waiting else "")
                + f"{self.failed} failed, {self.stopped} stopped early"
                + (f", {self.infeasible} infeasible" if self.constraints else "")
                + f" | elapsed {_duration(elapsed)}"
                + (f", ~{_duration(eta)} left" if eta is not None else "")
                + f" | front {len(self.front.front_rows())}, hypervolume "
                + (f"{hv:,.6g}" if hv is not None else self._pending())
                + (f" | best {best}" if best else ""))

    def render(self):
        from rich.table import Table

        table = Table(title="gatesearch: " + self.summary(), title_justify="left", show_edge=False)
        table.add_column("running trial")
        table.add_column("epoch", justify="right")
        paused = set(self.paused())
        for trial_id, (label, epoch, total) in self.running.items():
            table.add_row(label + (" (paused at a rung)" if trial_id in paused else ""),
                          f"{epoch}/{total}" if total else str(epoch))
        return table

    def _event(self, text: str) -> None:
        if self._live is not None:
            self._live.update(self.render())
        else:
            self._line(f"{text} | {self.summary()}")

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def _line(self, text: str) -> None:
        self.stream.write(f"[{_duration(time.monotonic() - self.t0)}] {text}\n")
        self.stream.flush()
