"""MO-ASHA on Ray Tune: the scheduler adapter over :class:`gatesearch.search.schedulers.moasha.MOASHA`."""

from __future__ import annotations

import json
import logging
import os
from typing import Sequence

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from gatesearch.objectives.metrics import EPOCH, EPOCHS_TOTAL
from gatesearch.search.loop.composition import decide
from gatesearch.search.ray.live import Live
from gatesearch.search.schedulers.moasha import MOASHA, PAUSE, STOP

#: MO-ASHA's rung records, in a subdirectory of the experiment directory (Ray does not save
#: schedulers). Not at its top level: on restore Ray copies the top-level *.json/*.pkl files into its
#: driver staging directory and later syncs that copy back up, which overwrote the records the
#: resumed search had written with the ones it had started from.
RUNGS_FILE = os.path.join(".gatesearch-rungs", "moasha_rungs.json")


class MOASHAScheduler(FIFOScheduler):
    """Ray adapter over :class:`search.moasha.MOASHA`: stops trials at rungs.

    Ray Tune never saves a scheduler's state (``Tuner.restore`` brings back the one pickled at the
    start, with empty rungs), so the rung records are written to ``RUNGS_FILE`` under the experiment
    directory whenever a trial reaches a rung, and read back from the live experiment directory
    (:class:`~gatesearch.search.ray.live.Live`) before the first decision of a fit: a resumed
    search's restored copy continues with every rung record, wherever the search directory is now."""

    def __init__(self, core: MOASHA, metrics: Sequence[str], constraints=None, max_concurrent: int = 1):
        """``constraints``: the search's outcome constraints (a trial outside them at a rung goes
        after every feasible one), or None. ``max_concurrent``: trials running at once (promotion:
        paused trials do not count, see :meth:`choose_trial_to_run`)."""
        super().__init__()
        self.core, self.metrics = core, list(metrics)
        self.constraints = constraints or None
        self.max_concurrent = max_concurrent
        self.state_dir: str | None = None  # where the records are read from and written to (the live one)
        self.stopped: list[str] = []
        self.promoting: str | None = None  # promotion: the paused trial chosen to resume, until it runs
        self.paused_ids: list[str] = []  # promotion: the waiting trials, as of the last scheduling step
        self._unpaused = 0  # promotion: trials running or about to, as of then (plus those started since)

    def __getstate__(self):
        return {**self.__dict__, "state_dir": None}  # a restored copy reads its records first

    def _attach(self) -> None:
        if self.core.promote:
            Live.scheduler = self
        if self.state_dir is None and Live.experiment_dir is not None:
            restored = self.load_rungs(Live.experiment_dir)
            if restored:
                logging.getLogger(__name__).info("MO-ASHA: %d rung records restored", restored)

    def set_search_properties(self, metric, mode, **spec) -> bool:
        # called by tune.run before the first step, on a fresh and on a restored search: a promotion
        # scheduler registers itself for UnpausedLimit (which starts nothing before it has)
        self._attach()
        return True

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self._attach()
        if not all(m in result for m in self.metrics) or EPOCH.name not in result:
            return TrialScheduler.CONTINUE
        epoch = int(result[EPOCH.name])
        assigned = len(self.core.assigned)
        waiting = [t.trial_id for t in self._waiting(tune_controller)] if self.core.promote else []
        decision = decide(self.core, trial.trial_id, result, self.metrics, self.constraints, paused=waiting)
        if self.core.is_rung(trial.trial_id, epoch) or len(self.core.assigned) != assigned:  # a record or a bracket
            self.save_rungs()
        if decision == PAUSE:  # Ray saves its checkpoint; a promotion restores the trial from it
            self.paused_ids = [*self.paused_ids, trial.trial_id]  # shown at once (choose_trial_to_run recounts)
            return TrialScheduler.PAUSE
        if decision == STOP:
            self.stopped.append(trial.trial_id)
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    # promotion (``core.promote``): paused trials wait at their rung until promoted or the search ends

    def _waiting(self, tune_controller) -> list:
        """Trials waiting at a rung: paused and not promoted from it (a restored experiment has them
        PENDING again)."""
        return [t for t in tune_controller.get_trials()
                if t.status in (Trial.PAUSED, Trial.PENDING) and self.core.paused_at(t.trial_id) is not None]

    def promotion_ready(self) -> bool:
        """Whether a paused trial is waiting for a free worker (then no new trial is started)."""
        return self.promoting is not None or self.core.promotable(self.paused_ids, mark=False) is not None

    def unpaused(self) -> int:
        """Trials running or about to (not waiting at a rung): as of the last scheduling step, plus
        the new ones the searcher started since (:meth:`started`)."""
        return self._unpaused

    def started(self) -> None:
        self._unpaused += 1

    def choose_trial_to_run(self, tune_controller):
        """Stopping: Ray's FIFO choice. Promotion: a trial restored PENDING while it waits at a rung is
        paused again; the promoted trial, if any and a worker is free, resumes from its checkpoint;
        else a new trial starts; when nothing runs, nothing is pending and the searcher is done, the
        trials still waiting end at their rung (stopped early)."""
        if not self.core.promote:
            return super().choose_trial_to_run(tune_controller)
        self._attach()
        waiting = self._waiting(tune_controller)
        for t in waiting:
            if t.status == Trial.PENDING:
                tune_controller._set_trial_status(t, Trial.PAUSED)  # whitelisted for schedulers (as PBT uses it)
        trials = tune_controller.get_trials()
        active = [t for t in trials if t.status in (Trial.PENDING, Trial.RUNNING)]
        self.paused_ids = [t.trial_id for t in waiting]
        self._unpaused = len(active)
        by_id = {t.trial_id: t for t in waiting}
        if len(active) < self.max_concurrent:
            if self.promoting not in by_id:
                self.promoting = self.core.promotable(list(by_id))  # marked promoted (and saved) now
                if self.promoting is not None:
                    self.save_rungs()
            if self.promoting is not None:
                trial, self.promoting = by_id[self.promoting], None
                self._unpaused += 1
                self.paused_ids = [t for t in self.paused_ids if t != trial.trial_id]
                return trial
        for t in active:
            if t.status == Trial.PENDING:
                return t
        for t in trials:  # paused but not waiting at a rung (e.g. promoted, then the driver died): continue
            if t.status == Trial.PAUSED and t.trial_id not in by_id and len(active) < self.max_concurrent:
                return t
        if waiting and not active and tune_controller.search_alg.is_finished():
            self.paused_ids = []
            for t in waiting:  # never promoted: they end at their rung
                closing = self.closing_result(t.trial_id, t.config, t.last_result)
                if closing is not t.last_result:
                    t.update_last_result(closing)
                self.stopped.append(t.trial_id)
                tune_controller.stop_trial(t)
        return None

    def closing_result(self, trial_id: str, config, last: dict | None) -> dict:
        """The report a trial that ends waiting at its rung is closed with (what the sink and the
        searcher are told): its last result when that is the rung's report, else the report made
        from the rung record. A resumed search's trial can carry an older epoch's result: Ray
        restores ``last_result`` from its last experiment snapshot, which may predate the rung (the
        driver was killed after the trial reached it); the rung file is written at every rung, so
        the record is the trial's latest report (found by CI's killed-promotion test: a trial
        closed at epoch 1 whose epoch 2 was in MLflow)."""
        rung = self.core.paused_at(trial_id)
        if last and EPOCH.name in last and int(last[EPOCH.name]) == rung:
            return last
        values = self.core.levels[self.core.assigned[trial_id]][rung][trial_id]
        return {**dict(zip(self.metrics, (float(v) for v in values))), EPOCH.name: rung,
                EPOCHS_TOTAL.name: self.core.max_t, "config": dict(config), "trial_id": trial_id}

    def save_rungs(self) -> None:
        """Write the rung records (atomically: a killed driver leaves the previous file)."""
        if not self.state_dir:
            return
        path = os.path.join(self.state_dir, RUNGS_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.core.records(), f)
        os.replace(tmp, path)

    def load_rungs(self, state_dir: str) -> int:
        """Resume: read the rung records of ``state_dir`` (and write there from now on)."""
        self.state_dir = state_dir
        path = os.path.join(state_dir, RUNGS_FILE)
        if not os.path.exists(path):  # a search started before the records moved to a subdirectory
            path = os.path.join(state_dir, os.path.basename(RUNGS_FILE))
        if not os.path.exists(path):
            return 0
        with open(path, encoding="utf-8") as f:
            return self.core.load(json.load(f))
