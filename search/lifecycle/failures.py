"""A mistake in a training function costs a few trials, not the budget: fail fast.

:class:`FailureWatch` sees every trial end (a trial-event observer on the driver). With
``search: {fail_fast: N}`` (default 3; 0 never stops) the search is stopped, resumably, when ``N``
trials in a row fail (the first ``N`` of a search whose function raises at once, too); the message
says whether they failed the same way (the same exception type raised at the same line).

The driver then ends the search as an interrupt does (the parent run ``KILLED``, the manifest
``interrupted``) and raises :class:`SearchFailing`, which names the failure once, with the user's
``file:line``; after the fix, ``gatesearch resume`` runs the rest of the budget. A finished search
with some failed trials is not stopped: it says "k of n trials failed" (and the CLI exits with
:data:`EXIT_SOME_FAILED`).

Exit codes of the CLI (documented in the docs' "Your model"):

====  =====================================================================
0     the search finished, every trial too
1     an unexpected error, or no trial finished
2     a bad argument or space file (nothing ran)
3     the search finished with some failed trials (``--allow-failed``: 0)
4     stopped by repeated failures (:class:`SearchFailing`; resumable)
130   interrupted by SIGINT/SIGTERM (resumable)
====  =====================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from gatesearch.search.lifecycle.trial_error import error_summary

EXIT_SOME_FAILED = 3
EXIT_FAILING = 4
_TYPE = re.compile(r"^(?:[\w.]+\()?(?P<type>[A-Za-z_][\w.]*)\)?: ")


@dataclass(frozen=True)
class Failure:
    """One failed trial: its exception type, the line of the user's code that raised it ("" when
    it was not the user's), and the one-line summary."""

    trial_id: str
    kind: str
    where: str
    summary: str

    @property
    def signature(self) -> tuple[str, str]:
        return self.kind, self.where


def failure_of(trial_id: str, error: str) -> Failure:
    """A :class:`Failure` from Ray's error text of a trial (:mod:`gatesearch.search.lifecycle.trial_error`)."""
    summary = error_summary(error)
    where = ""
    m = re.search(r" \(at (?P<where>[^()]+:\d+)\)$", summary)
    if m:
        where = m["where"]
    t = _TYPE.match(summary)
    kind = t["type"].rsplit(".", 1)[-1] if t else summary.split(":", 1)[0][:80]
    return Failure(trial_id, kind, where, summary)


class SearchFailing(Exception):
    """A search stopped by repeated failures (see the module), left resumable."""

    def __init__(self, why: str, failure: Failure, failed: int, finished: int, search_dir: str):
        self.why, self.failure, self.failed, self.finished, self.search_dir = why, failure, failed, finished, search_dir
        super().__init__(f"stopped: {why}: {failure.summary}; fix it, then `gatesearch resume {search_dir}` runs the "
                         f"rest of the budget")


class FailureWatch:
    """Watches trial ends (the trial-sink methods) and trips on repeated failures (see the module)."""

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.failures: list[Failure] = []
        self.finished = 0
        self.in_a_row = 0
        self.tripped: str | None = None
        self.cause: Failure | None = None

    # -- trial events -------------------------------------------------------------------------
    def on_start(self, trial_id: str, config: Mapping[str, Any]) -> None:
        pass

    def on_result(self, trial_id: str, result: Mapping[str, Any]) -> None:
        pass

    def on_retry(self, trial_id: str, failures: int) -> None:
        pass

    def on_complete(self, trial_id: str, result: Mapping[str, Any]) -> None:
        self.finished += 1
        self.in_a_row = 0

    def on_error(self, trial_id: str, error: str) -> None:
        failure = failure_of(trial_id, error)
        self.failures.append(failure)
        self.in_a_row += 1
        if self.tripped is not None or self.limit <= 0:
            return
        if self.in_a_row < self.limit:
            return
        last = self.failures[-self.in_a_row:]
        alike = all(f.signature == failure.signature for f in last)
        first = " (the first trials of the search)" if self.finished == 0 and len(self.failures) == self.in_a_row else ""
        self.tripped = (f"{self.in_a_row} trials in a row failed{first}"
                        + (", all the same way" if alike else ", the last one with"))
        self.cause = failure
