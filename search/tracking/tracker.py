"""MLflow logging: the only module that imports mlflow.

One parent run per search, one nested child run per trial (``mlflow.parentRunId``),
found again by tags so re-logging never creates duplicates. All calls go through an
explicit ``MlflowClient`` with explicit run ids (no global active-run state), from the
driver process only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Mapping

import sqlalchemy
from mlflow.entities import Metric as MlflowMetric
from mlflow.entities import Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from gatesearch.search.system.file_lock import store_lock

# the tag names and the record type live with the store contract (re-exported for callers)
from gatesearch.search.tracking.store import (  # noqa: F401
    TAG_ERROR,
    TAG_INTERRUPTED,
    TAG_PARENT,
    TAG_RANK,
    TAG_ROLE,
    TAG_SEARCH,
    TAG_TRIAL,
    TrialRecord,
)

logging.getLogger("mlflow").setLevel(logging.WARNING)  # no INFO lines about schema migrations
EXPERIMENT_KIND = "mlflow.experimentKind"  # read by MLflow 3's UI to pick the experiment's view


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "connect")
def _sqlite_wal(dbapi_connection, _record) -> None:
    """A local SQLite store in write-ahead-log mode with ``synchronous=NORMAL``: a commit no
    longer waits for an fsync of the database (the log is synced at checkpoints), which was
    most of the driver's cost per logged call. Durable against a killed driver; a power loss
    may drop the last few writes. Readers (``mlflow ui``) keep working while a search writes."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


# MLflow's own HTTP retry defaults (7 retries, backoff factor 2, 120 s timeout) can block the
# driver for minutes per call while a server is down. We fail fast here and retry in
# search.outbox instead, which buffers in order and has a search-level timeout.
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}  # no "View run" line per finished trial
_TRANSIENT_TEXT = ("max retries exceeded", "connection refused", "connectionerror", "timed out", "timeout",
                   "database is locked", "temporarily unavailable", "bad gateway", "service unavailable",
                   "remotedisconnected", "connection aborted", "connection reset", "error code 50",
                   # a database server (PostgreSQL) restarting under a store used directly or the Optuna mirror
                   "server closed the connection", "terminating connection", "the database system is")

def _param_value(v: Any) -> str:
    s = json.dumps(v) if isinstance(v, (dict, list, tuple)) else str(v)
    return s[:6000]


class Tracker:
    """An MLflow experiment seen through a client bound to ``tracking_uri``
    (implements :class:`gatesearch.search.tracking.store.TrackingStore`)."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None):
        """``artifact_location`` (absolute) is used only when the experiment is created;
        without it a SQLite store would put artifacts under the current directory."""
        self.uri = tracking_uri
        if tracking_uri.startswith(("http://", "https://")):
            for k, v in HTTP_ENV.items():
                os.environ.setdefault(k, v)
        # opening a SQLite store creates (or migrates) it: one process at a time, so searches
        # started together into one folder do not race on MLflow's schema; the experiment too
        with store_lock(tracking_uri):
            self.client = MlflowClient(tracking_uri)
            self.experiment_id = self._experiment_id(experiment, artifact_location)
        self.experiment = experiment

    def _experiment_id(self, experiment: str, artifact_location: str | None) -> str:
        exp = self.client.get_experiment_by_name(experiment)
        if exp is not None:
            return exp.experiment_id
        try:  # "Model training" (not the GenAI traces page) is the view a search's experiment opens in
            return self.client.create_experiment(experiment, artifact_location=artifact_location,
                                                 tags={EXPERIMENT_KIND: "custom_model_development"})
        except MlflowException as e:  # created meanwhile by another search on the same tracking server
            exp = self.client.get_experiment_by_name(experiment)
            if exp is None or e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return exp.experiment_id

    @staticmethod
    def warm_up(tracking_uri: str) -> None:
        """Import the store's modules (a SQLite store's take about 1.5 s) without touching the
        store: run in a thread while Ray starts, so the two start-up costs overlap."""
        if tracking_uri.startswith(("sqlite:", "postgresql")):
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
        else:
            import mlflow.store.tracking.rest_store  # noqa: F401

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """Whether ``exc`` means "the store is unreachable right now" (worth retrying):
        connection errors, timeouts, 5xx answers, a locked SQLite file, a database connection
        lost. The causes are looked at too (Optuna wraps a database's errors in its own)."""
        import requests

        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError,
                            TimeoutError)):
            return True
        if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
            return True
        text = f"{type(exc).__name__} {exc}".lower()
        if any(t in text for t in _TRANSIENT_TEXT):
            return True
        return exc.__cause__ is not None and Tracker.is_transient(exc.__cause__)

    def _find(self, filter_string: str) -> list:
        out, token = [], None
        while True:
            page = self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=1000,
                                           page_token=token)
            out.extend(page)
            token = page.token
            if not token:
                return out

    def start_search(self, search_id: str, run_name: str, params: Mapping[str, Any],
                     tags: Mapping[str, str] | None = None) -> str:
        """The parent run of ``search_id`` (created once, reused afterwards)."""
        found = self._find(f"tags.`{TAG_SEARCH}` = '{search_id}' and tags.`{TAG_ROLE}` = 'search'")
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            return run_id
        run = self.client.create_run(self.experiment_id, run_name=run_name,
                                     tags={TAG_SEARCH: search_id, TAG_ROLE: "search", **(tags or {})})
        self.log_params(run.info.run_id, params)
        return run.info.run_id

    def create_trial_run(self, parent_id: str, search_id: str, trial_id: str, run_name: str) -> str:
        """A new child run for ``trial_id`` under ``parent_id`` (the caller keeps the id: the
        driver never searches the store per trial; see :meth:`children` for a resume)."""
        run = self.client.create_run(self.experiment_id, run_name=run_name,
                                     tags={TAG_PARENT: parent_id, TAG_SEARCH: search_id, TAG_TRIAL: trial_id,
                                           TAG_ROLE: "trial"})
        return run.info.run_id

    def log_batch(self, run_id: str, *, params: Mapping[str, Any] | None = None,
                  metrics: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
                  step: int = 0) -> None:
        """Params, metrics (finite numbers only, at ``step``) and tags of one run in as few
        calls as MLflow allows (one, below 100 params / 1000 metrics / 100 tags)."""
        ps = [Param(k, _param_value(v)) for k, v in (params or {}).items()]
        ts = int(time.time() * 1000)
        ms = [MlflowMetric(k, float(v), ts, step) for k, v in (metrics or {}).items()
              if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))]
        tg = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
        while ps or ms or tg:  # MLflow's per-request limits
            self.client.log_batch(run_id, params=ps[:100], metrics=ms[:1000], tags=tg[:100])
            ps, ms, tg = ps[100:], ms[1000:], tg[100:]

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=params)

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int) -> None:
        """Log the finite numeric entries of ``metrics`` at ``step``."""
        self.log_batch(run_id, metrics=metrics, step=step)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Mark a run FINISHED, FAILED or KILLED."""
        RunStatus.from_string(status)  # validates
        self.client.set_terminated(run_id, status=status)

    def delete_run(self, run_id: str) -> None:
        """Delete a run this process created and could not start (a ``run`` that failed at its start)."""
        self.client.delete_run(run_id)

    def reopen_run(self, run_id: str) -> None:
        """An interrupted trial's run continues: RUNNING again, without the interrupted tag."""
        self.client.update_run(run_id, status="RUNNING")
        try:
            self.client.delete_tag(run_id, TAG_INTERRUPTED)
        except MlflowException:  # already gone (a retried call)
            pass

    def searches(self) -> list[tuple[str, dict[str, str]]]:
        """(run id, params) of the experiment's search (parent) runs, newest first."""
        runs = self._find(f"tags.`{TAG_ROLE}` = 'search'")
        runs.sort(key=lambda r: r.info.start_time or 0, reverse=True)
        return [(r.info.run_id, dict(r.data.params)) for r in runs]

    @staticmethod
    def experiments(tracking_uri: str) -> list[str]:
        """Names of the experiments in a tracking store, newest first."""
        with store_lock(tracking_uri):
            exps = MlflowClient(tracking_uri).search_experiments()
        exps.sort(key=lambda e: e.creation_time or 0, reverse=True)
        return [e.name for e in exps if e.name != "Default"]

    @staticmethod
    def find_run(tracking_uri: str, run_id: str) -> tuple[str, dict[str, str], dict[str, str]]:
        """(experiment name, params, tags) of run ``run_id`` of a store, read-only; ``ValueError``
        naming the store when there is no such run."""
        from gatesearch.search.system.redact import scrub, shown

        try:
            with store_lock(tracking_uri):
                client = MlflowClient(tracking_uri)
            run = client.get_run(run_id)
            name = client.get_experiment(run.info.experiment_id).name
        except MlflowException as e:
            raise ValueError(f"run {run_id} not found in {shown(tracking_uri)} ({str(e).splitlines()[0]})") from None
        except Exception as e:  # noqa: BLE001 - the store itself: a refused login, no server
            if not Tracker.is_transient(e) and "OperationalError" not in type(e).__name__:
                raise
            first = scrub((str(e).strip().splitlines() or [""])[0])[:300]
            raise ValueError(f"cannot read the store {shown(tracking_uri)} ({first}); a password is never stored "
                             f"with a search, so give it in PGPASSWORD or ~/.pgpass (PostgreSQL) or "
                             f"MLFLOW_TRACKING_PASSWORD (an MLflow server)") from None
        return name, dict(run.data.params), dict(run.data.tags)

    def children(self, parent_id: str) -> list[TrialRecord]:
        """Child runs of ``parent_id``, oldest first."""
        runs = self._find(f"tags.`{TAG_PARENT}` = '{parent_id}'")
        runs.sort(key=lambda r: r.info.start_time or 0)
        return [TrialRecord(run_id=r.info.run_id, trial_id=r.data.tags.get(TAG_TRIAL, ""), status=r.info.status,
                            params=dict(r.data.params), metrics=dict(r.data.metrics), tags=dict(r.data.tags))
                for r in runs]

    def params(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.params)

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        return [(m.step, m.value) for m in self.client.get_metric_history(run_id, key)]

    def log_dict(self, run_id: str, obj: Any, artifact_file: str) -> None:
        self.client.log_dict(run_id, obj, artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def list_artifacts(self, run_id: str) -> list[str]:
        return [a.path for a in self.client.list_artifacts(run_id)]

    def start_time(self, run_id: str) -> float:
        """When ``run_id`` started (seconds since the epoch)."""
        return (self.client.get_run(run_id).info.start_time or 0) / 1000.0

    def load_dict(self, run_id: str, artifact_file: str) -> Any | None:
        """A JSON artifact of ``run_id`` (written by :meth:`log_dict`), or None when it has none."""
        import json
        import tempfile

        if artifact_file not in self.list_artifacts(run_id):
            return None
        with tempfile.TemporaryDirectory() as tmp, _no_progress_bar():  # a CLI's output is ours, not tqdm's
            path = self.client.download_artifacts(run_id, artifact_file, tmp)
            with open(path, encoding="utf-8") as f:
                return json.load(f)


@contextmanager
def _no_progress_bar():
    """MLflow's artifact download without its progress bar (it writes to the terminal)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def relocate_sqlite_store(db_path: str | os.PathLike, new_root: str | os.PathLike) -> tuple[str, int]:
    """Re-root the artifact locations of a local SQLite store whose output folder was moved or
    copied: every ``file://<old root>/...`` experiment location and run artifact URI (and tag
    value naming the old root) is rewritten under ``new_root``. The old root is read from the
    store itself (the experiments' ``file://.../artifacts`` locations). Returns (old root,
    rows changed). Plain SQLite on MLflow's schema, so it works without a running server."""
    new = str(Path(new_root).resolve())
    con = sqlite3.connect(str(db_path))
    try:
        locations = [r[0] for r in con.execute("SELECT artifact_location FROM experiments") if r[0]]
        roots = {loc[len("file://"):].rsplit("/artifacts", 1)[0] for loc in locations
                 if loc.startswith("file://") and "/artifacts" in loc}
        if not roots:
            raise ValueError(f"{db_path}: no file:// artifact location to re-root (nothing to do)")
        if len(roots) > 1:
            raise ValueError(f"{db_path}: experiments under several roots {sorted(roots)}; re-root them one by one")
        old = roots.pop()
        if old == new:
            return old, 0
        changed = 0
        for table, column in (("experiments", "artifact_location"), ("runs", "artifact_uri")):
            cur = con.execute(f"UPDATE {table} SET {column} = 'file://' || ? || substr({column}, ?) "  # noqa: S608
                              f"WHERE {column} LIKE ?", (new, len("file://" + old) + 1, f"file://{old}/%"))
            changed += cur.rowcount
        cur = con.execute("UPDATE tags SET value = ? || substr(value, ?) WHERE value LIKE ?",
                          (new, len(old) + 1, f"{old}/%"))
        changed += cur.rowcount
        con.commit()
        return old, changed
    finally:
        con.close()
