"""Every search mirrored into an Optuna study, so optuna-dashboard can show it too.

Whatever the searcher (Optuna's samplers, Nevergrad, ...), each finished trial's searched
parameters and objective values are added to an Optuna study in RDB storage (by default SQLite in
the output directory; ``--optuna-storage`` names another, e.g. a team's PostgreSQL database), one
study per search, named after the search id, with the distributions of the space's parameters.
Writes are batched (:meth:`OptunaMirror.flush` is called with the front's artifacts, within their
time share, and at the end). On resume the study is reopened and trials it already holds (by
``gatesearch.trial_id``) are not added twice.

    optuna-dashboard sqlite:///<output dir>/optuna.db     # pip install 'gatesearch[dashboard]'
    optuna-dashboard postgresql+psycopg://user:pw@host:5432/optuna
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

from gatesearch.search.system.file_lock import is_postgres, store_lock
from gatesearch.spaces import Categorical, Fixed, Float, Int, Space

ATTR_TRIAL = "gatesearch.trial_id"


def optuna_storage(output_dir, storage: str | None = None) -> str:
    """``storage`` when set (e.g. ``postgresql+psycopg://...``), else the SQLite URL of the output
    directory's Optuna storage."""
    from pathlib import Path

    return storage or f"sqlite:///{Path(output_dir).resolve() / 'optuna.db'}"


def _rdb_storage(url: str):
    """Optuna's RDB storage for ``url``. A server database's pooled connections are checked
    before use (Optuna does so only for MySQL), so a restarted PostgreSQL costs one reconnect,
    not a failed write."""
    import optuna

    if not is_postgres(url):
        return url
    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


def distribution(p):
    """The Optuna distribution of a space parameter (a fixed value: a one-choice categorical)."""
    import optuna

    if isinstance(p, Float):
        return optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
    if isinstance(p, Int):
        return optuna.distributions.IntDistribution(p.low, p.high, log=p.log)
    if isinstance(p, Categorical):
        return optuna.distributions.CategoricalDistribution(list(p.choices))
    if isinstance(p, Fixed):
        return optuna.distributions.CategoricalDistribution([p.value])
    raise TypeError(f"unsupported parameter {p!r}")


class OptunaMirror:
    """Buffers finished trials and adds them to the study ``study_name`` in ``storage``."""

    def __init__(self, storage: str, study_name: str, space: Space, names: Sequence[str], modes: Sequence[str]):
        self.space, self.names, self.modes = space, list(names), list(modes)
        self.storage, self.study_name = storage, study_name
        self._study = None  # opened on first use, on the tracking thread (creating the schema takes ~1 s)
        self._added: set | None = None
        self.pending: list = []

    @property
    def study(self):
        if self._study is None:
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            with store_lock(self.storage):  # creating the storage's schema: one search at a time
                study = optuna.create_study(storage=_rdb_storage(self.storage), study_name=self.study_name,
                                            load_if_exists=True,
                                            directions=["maximize" if m == "max" else "minimize" for m in self.modes])
            with warnings.catch_warnings():  # "experimental" since Optuna 3.2; optuna-dashboard reads it
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(self.names)
            self._study = study
        return self._study

    @property
    def added(self) -> set:
        """Trial ids the study holds or has queued (read from the study once)."""
        if self._added is None:
            self._added = {t.user_attrs.get(ATTR_TRIAL) for t in self.study.get_trials(deepcopy=False)}
        return self._added

    def add(self, trial_id: str, config: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """Queue a finished trial (``config``: its searched parameters)."""
        import optuna

        values = [metrics.get(n) for n in self.names]
        if trial_id in self.added or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            return
        params = {k: v for k, v in config.items() if k in self.space.params}
        self.pending.append(optuna.trial.create_trial(
            params=params, distributions={k: distribution(self.space.params[k]) for k in params},
            values=[float(v) for v in values], user_attrs={ATTR_TRIAL: trial_id}))
        self.added.add(trial_id)

    def add_record(self, trial_id: str, params: Mapping[str, str], metrics: Mapping[str, Any]) -> None:
        """Queue a finished trial read back from the tracking store (its params are strings)."""
        typed = {}
        for k, raw in params.items():
            p = self.space.params.get(k)
            if isinstance(p, Float):
                typed[k] = float(raw)
            elif isinstance(p, Int):
                typed[k] = int(raw)
            elif isinstance(p, (Categorical, Fixed)):
                options = p.choices if isinstance(p, Categorical) else (p.value,)
                match = [c for c in options if str(c) == raw]
                if match:
                    typed[k] = match[0]
        self.add(trial_id, typed, metrics)

    def flush(self) -> None:
        """Write the queued trials, one transaction each: a flush that fails part-way (the
        database went away) and is retried writes only the trials not written yet."""
        while self.pending:
            self.study.add_trial(self.pending[0])
            self.pending.pop(0)
