"""Ctrl-C and SIGTERM on the driver: stop a search so that ``gatesearch resume`` finishes it.

The first SIGINT or SIGTERM (Ctrl-C in a terminal; what ``timeout``, Slurm preemption and a
Kubernetes pod eviction send) asks the search to stop gracefully: no new trial starts, Ray Tune
saves its experiment state one last time, running trials are stopped (their last per-epoch
checkpoint is kept, and resume continues them from it), every open child run is ended ``KILLED``
with the tag :data:`TAG_INTERRUPTED`, the parent run is ended ``KILLED`` and the manifest says
``interrupted``. The driver then raises :class:`SearchInterrupted` (the CLI prints how to resume
and exits 130). A second signal stops at once (``KeyboardInterrupt``), and the search is still
resumable from Ray's last snapshot (taken every 2 s).

Ray Tune's own SIGINT handler is switched off (``TUNE_DISABLE_SIGINT_HANDLER``, see
:mod:`gatesearch.search.ray`): it would stop Tune but leave the search looking finished. The
handlers here only set a flag; the Tuner's stopper polls it and triggers Tune's graceful stop.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

from gatesearch.search.tracking.store import TAG_INTERRUPTED  # noqa: F401 - re-exported: the tag named above

#: the exit status of a search stopped by a signal (128 + SIGINT, what shells use for Ctrl-C)
EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SearchInterrupted(Exception):
    """A search stopped by SIGINT/SIGTERM, left resumable."""

    def __init__(self, signal_name: str, finished: int, budget: int, search_dir: str):
        self.signal_name, self.finished, self.budget, self.search_dir = signal_name, finished, budget, search_dir
        super().__init__(f"interrupted ({signal_name}): {finished} of {budget} finished; "
                         f"finish it with `gatesearch resume {search_dir}`")


class Interrupts:
    """Catches SIGINT and SIGTERM while a search runs (see the module docstring).

    :attr:`requested` is the name of the first signal received (None until one is); the Tuner's
    stopper polls it. The handlers are installed only on the main thread (a search run from
    another thread through the API keeps Python's defaults)."""

    def __init__(self, checkpointed: bool = True) -> None:
        """``checkpointed``: whether the search's trials continue from a checkpoint (the message
        says what resume will do with the trials it stops)."""
        self.requested: str | None = None
        self.checkpointed = checkpointed

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested is not None:
            raise KeyboardInterrupt(f"second {name}: stopping at once")
        self.requested = name
        then = ("continue from their last checkpoint" if self.checkpointed else
                "start again from epoch 1 (this objective does not checkpoint; its logged epochs are kept)")
        sys.stderr.write(f"\n{name} received: stopping the search (no new trials; running trials stop and "
                         f"{then} on `gatesearch resume`). Send it again to stop at once.\n")
        sys.stderr.flush()

    @contextmanager
    def catching(self) -> Iterator["Interrupts"]:
        """Install the handlers for the duration of the block (then put the previous ones back)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in SIGNALS}
        for s in SIGNALS:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
