"""The tracking-store contract the search logs through (:class:`gatesearch.search.tracking.tracker.Tracker`
implements it over MLflow; a test double or another backend can implement it too).

Runs are identified by opaque string ids. A search has one parent run; each trial one child
run, created once by the driver, which keeps the id in memory (the store is searched only
when a search is resumed, through :meth:`TrackingStore.children`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

TAG_ROLE = "gatesearch.role"
TAG_SEARCH = "gatesearch.search_id"
TAG_TRIAL = "gatesearch.trial_id"
TAG_PARENT = "mlflow.parentRunId"
TAG_RANK = "pareto_rank"
TAG_ERROR = "gatesearch.error"
#: a child run that was running when its search was interrupted (SIGINT/SIGTERM): ended KILLED,
#: reopened by ``gatesearch resume`` when its trial continues
TAG_INTERRUPTED = "gatesearch.interrupted"


@dataclass(frozen=True)
class TrialRecord:
    """A child run as read back from MLflow."""

    run_id: str
    trial_id: str
    status: str
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]


@runtime_checkable
class TrackingStore(Protocol):
    """What the driver needs from a tracking store."""

    uri: str
    experiment: str
    experiment_id: str

    def start_search(self, search_id: str, run_name: str, params: Mapping[str, Any],
                     tags: Mapping[str, str] | None = None) -> str:
        """The parent run of ``search_id``: created the first time, found (and set RUNNING) after."""

    def create_trial_run(self, parent_id: str, search_id: str, trial_id: str, run_name: str) -> str:
        """A new child run of ``parent_id`` for ``trial_id``."""

    def log_batch(self, run_id: str, *, params: Mapping[str, Any] | None = None,
                  metrics: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
                  step: int = 0) -> None:
        """Params, finite numeric metrics at ``step`` and tags of one run, batched."""

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Mark a run FINISHED, FAILED or KILLED."""

    def reopen_run(self, run_id: str) -> None:
        """Set a run ``KILLED`` by an interrupted search back to RUNNING (its trial continues)
        and drop its :data:`TAG_INTERRUPTED` tag."""

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """(step, value) of every logged value of ``key``."""

    def children(self, parent_id: str) -> Sequence[Any]:
        """The child runs of ``parent_id`` as :class:`~gatesearch.search.tracking.tracker.TrialRecord`, oldest first."""

    def log_dict(self, run_id: str, obj: Any, artifact_file: str) -> None: ...

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None: ...

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None: ...

    def start_time(self, run_id: str) -> float:
        """When ``run_id`` started (seconds since the epoch)."""

    def load_dict(self, run_id: str, artifact_file: str) -> Any | None:
        """A JSON artifact written by :meth:`log_dict`, or None when the run has none."""

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """Whether ``exc`` means "unreachable right now" (worth retrying)."""
