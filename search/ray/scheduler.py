"""MO-ASHA on Ray Tune: the scheduler adapter over :class:`gatesearch.search.moasha.MOASHA`."""

from __future__ import annotations

import json
import logging
import os
from typing import Sequence

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from gatesearch.objectives.metrics import EPOCH
from gatesearch.search.moasha import MOASHA
from gatesearch.search.ray.live import Live

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

    def __init__(self, core: MOASHA, metrics: Sequence[str], constraints=None):
        """``core``: stopping MO-ASHA (promotion is measured by ``bench/moasha.py`` on the simulator
        only: Ray's concurrency limiter counts paused trials as running, and a restored experiment
        starts every paused trial). ``constraints``: the search's outcome constraints (a trial outside them at a rung goes
        after every feasible one), or None."""
        super().__init__()
        if core.promote:
            raise ValueError("MO-ASHA on Ray stops trials; promotion (pause and resume) is not supported there")
        self.core, self.metrics = core, list(metrics)
        self.constraints = constraints or None
        self.state_dir: str | None = None  # where the records are read from and written to (the live one)
        self.stopped: list[str] = []

    def __getstate__(self):
        return {**self.__dict__, "state_dir": None}  # a restored copy reads its records first

    def _attach(self) -> None:
        if self.state_dir is None and Live.experiment_dir is not None:
            restored = self.load_rungs(Live.experiment_dir)
            if restored:
                logging.getLogger(__name__).info("MO-ASHA: %d rung records restored", restored)

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        self._attach()
        if not all(m in result for m in self.metrics) or EPOCH.name not in result:
            return TrialScheduler.CONTINUE
        epoch = int(result[EPOCH.name])
        feasible = self.constraints.feasible(result) if self.constraints is not None else True
        assigned = len(self.core.assigned)
        go = self.core.decide(trial.trial_id, epoch, [float(result[m]) for m in self.metrics], feasible=feasible)
        if self.core.is_rung(trial.trial_id, epoch) or len(self.core.assigned) != assigned:  # a record or a bracket
            self.save_rungs()
        if go:
            return TrialScheduler.CONTINUE
        self.stopped.append(trial.trial_id)
        return TrialScheduler.STOP

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
