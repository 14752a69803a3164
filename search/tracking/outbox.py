"""An ordered, retrying outbox for tracking calls, so a tracking-server outage never crashes
(or silently thins out) a search.

Trial events arrive on Ray's driver loop; they are queued here and applied to the real sink by
one background thread, strictly in order. When a call fails with a *transient* error (server
unreachable, timeout, 5xx, a locked SQLite file) the thread waits and retries that same call,
so everything logged during the outage is written once the server is back, in the original
order. If the server stays unreachable for longer than ``timeout_s`` the outbox turns fatal:
the Tuner is stopped (it polls :attr:`Outbox.failed`) and the driver raises a
:class:`TrackingUnavailable` naming the tracking URI and the timeout setting. Non-transient errors (a bug, a
rejected value) are raised the same way at once, never swallowed.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable


class TrackingUnavailable(RuntimeError):
    """The tracking store could not be written to for longer than the configured timeout."""


class Outbox:
    """Applies ``target.<method>(*args)`` calls in order on a background thread.

    When calls queue up faster than they are applied and the target has a
    ``merge(event, next_event) -> event | None`` method, consecutive events it can fold into
    one (e.g. a trial's start and first result: one write instead of two) are applied as one.

    Args:
        target: the object whose methods are called (e.g. an MLflow trial sink).
        is_transient: tells a retryable error from a real one.
        timeout_s: longest continuous outage tolerated before turning fatal.
        describe: where the calls go (for error messages), e.g. the tracking URI.
    """

    def __init__(self, target: Any, is_transient: Callable[[BaseException], bool], timeout_s: float,
                 describe: str = "the tracking store", poll_s: float = 0.5):
        self.target, self.is_transient, self.timeout_s = target, is_transient, float(timeout_s)
        self.describe, self.poll_s = describe, poll_s
        self.queue: queue.Queue = queue.Queue()
        self.error: BaseException | None = None
        self.outage_seconds = 0.0  # total time spent waiting for the store
        self.retries = 0
        self.durations: list[float] = []  # seconds of each applied call's successful attempt
        self._thread = threading.Thread(target=self._loop, name="gatesearch-outbox", daemon=True)
        self._thread.start()

    def call(self, method: str, *args: Any) -> None:
        """Queue ``target.method(*args)`` (dropped once the outbox failed: the search is being
        stopped, see :attr:`failed`, and the error is raised by the driver afterwards)."""
        if self.error is None:
            self.queue.put((method, args))

    @property
    def failed(self) -> bool:
        """True once the outbox gave up; the Tuner polls this to stop the whole experiment."""
        return self.error is not None

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every queued call is applied (or the outbox fails, which is raised)."""
        deadline = time.monotonic() + (self.timeout_s + 60 if timeout_s is None else timeout_s)
        while self.queue.unfinished_tasks and self.error is None:
            if time.monotonic() > deadline:
                raise TrackingUnavailable(f"{len(list(self.queue.queue))} tracking calls still pending for "
                                          f"{self.describe} after waiting {timeout_s} s")
            time.sleep(0.02)
        self.raise_if_failed()

    def timing(self) -> dict[str, float]:
        """How long the calls applied so far took (their successful attempt; waits and failed
        attempts during an outage are in :attr:`outage_seconds`): count, median, p95, max."""
        import numpy as np

        if not self.durations:
            return {"tracking_writes": 0}
        d = np.asarray(self.durations)
        return {"tracking_writes": len(d), "tracking_write_p50_s": float(np.percentile(d, 50)),
                "tracking_write_p95_s": float(np.percentile(d, 95)), "tracking_write_max_s": float(d.max())}

    def _apply(self, method: str, args: tuple) -> None:
        first_failure = None
        while True:
            try:
                started = time.perf_counter()
                getattr(self.target, method)(*args)
                self.durations.append(time.perf_counter() - started)
                if first_failure is not None:
                    self.outage_seconds += time.monotonic() - first_failure
                return
            except Exception as e:  # noqa: BLE001 - classified below, never swallowed
                if not self.is_transient(e):
                    self.error = e
                    return
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                if now - first_failure > self.timeout_s:
                    self.error = TrackingUnavailable(
                        f"{self.describe} was unreachable for more than {self.timeout_s:.0f} s "
                        f"(search setting tracking_timeout_s); last error: {str(e).splitlines()[0][:300]}. "
                        f"Nothing after that point was logged; restart the tracking server and run "
                        f"`gatesearch resume` on the search directory.")
                    return
                self.retries += 1
                time.sleep(self.poll_s)

    def _loop(self) -> None:
        merge = getattr(self.target, "merge", None)
        held = None  # an event taken from the queue but not applied yet (it did not merge)
        while True:
            method, args = held if held is not None else self.queue.get()
            held, taken = None, 1
            if merge is not None:  # a backlog: let the target fold the next event into this one
                while True:
                    try:
                        nxt = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    merged = merge((method, args), nxt)
                    if merged is None:
                        held = nxt
                        break
                    (method, args), taken = merged, taken + 1
            try:
                if self.error is None:
                    self._apply(method, args)
            finally:
                for _ in range(taken):  # the held event is marked done once it is applied
                    self.queue.task_done()


class BufferedSink:
    """A :class:`gatesearch.search.ray.callbacks.TrialSink` that forwards every event through an :class:`Outbox`."""

    def __init__(self, outbox: Outbox):
        self.outbox = outbox

    def on_start(self, trial_id, config) -> None:
        self.outbox.call("on_start", trial_id, dict(config))

    def on_result(self, trial_id, result) -> None:
        self.outbox.call("on_result", trial_id, dict(result))

    def on_complete(self, trial_id, result) -> None:
        self.outbox.call("on_complete", trial_id, dict(result))

    def on_error(self, trial_id, error) -> None:
        self.outbox.call("on_error", trial_id, error)

    def on_retry(self, trial_id, failures) -> None:
        self.outbox.call("on_retry", trial_id, failures)


class TeeSink:
    """Forwards every trial event to ``primary`` (the tracking sink) and to ``observers`` (e.g.
    the terminal progress). An observer that raises is dropped with a warning; it never stops the
    search."""

    def __init__(self, primary, *observers):
        self.primary, self.observers = primary, [o for o in observers if o is not None]

    def _fan(self, method: str, *args) -> None:
        getattr(self.primary, method)(*args)
        for o in list(self.observers):
            try:
                getattr(o, method)(*args)
            except Exception as e:  # noqa: BLE001 - display only
                import logging

                logging.getLogger(__name__).warning("progress display stopped: %s: %s", type(e).__name__, e)
                self.observers.remove(o)

    def on_start(self, trial_id, config) -> None:
        self._fan("on_start", trial_id, config)

    def on_result(self, trial_id, result) -> None:
        self._fan("on_result", trial_id, result)

    def on_complete(self, trial_id, result) -> None:
        self._fan("on_complete", trial_id, result)

    def on_error(self, trial_id, error) -> None:
        self._fan("on_error", trial_id, error)

    def on_retry(self, trial_id, failures) -> None:
        self._fan("on_retry", trial_id, failures)
