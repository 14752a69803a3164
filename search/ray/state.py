"""Ray Tune's experiment state on disk: a backup of the last complete snapshot, and its repair.

Ray writes ``experiment_state-*.json`` in place (not atomically). These helpers touch only
files (no ray import), so they are usable before Ray starts (``gatesearch resume``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

STATE_BACKUP = ".gatesearch-state"


def _newest_state(experiment_dir: Path) -> Path | None:
    found = sorted(experiment_dir.glob("experiment_state-*.json"))
    return found[-1] if found else None


def _state_files(state: Path) -> list[Path]:
    """The experiment state and the searcher files Ray wrote for the same session."""
    session = state.name[len("experiment_state-"):-len(".json")]
    return [p for p in (state, state.parent / f"search_gen_state-{session}.json",
                        state.parent / f"searcher-state-{session}.pkl") if p.exists()]


def _readable(state: Path) -> bool:
    try:
        json.loads(state.read_text())
        return True
    except (OSError, ValueError):
        return False


def backup_experiment_state(experiment_dir: str | Path) -> bool:
    """Keep a copy of Ray's latest *complete* experiment snapshot in ``.gatesearch-state/``.

    Ray writes ``experiment_state-*.json`` in place (not atomically), so a driver killed while
    it writes leaves a truncated file, and ``Tuner.restore`` then silently restarts the experiment
    with the searcher's old counters — finishing with fewer trials than the budget. The copy is
    taken only if it parses, and swapped in atomically."""
    exp = Path(experiment_dir)
    state = _newest_state(exp)
    if state is None:
        return False
    tmp, final = exp / f"{STATE_BACKUP}.tmp", exp / STATE_BACKUP
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for f in _state_files(state):
        shutil.copy2(f, tmp / f.name)
    if not _readable(tmp / state.name):
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    old = exp / f"{STATE_BACKUP}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return True


def repair_experiment_state(experiment_dir: str | Path) -> str | None:
    """Before a restore: if Ray's newest experiment state is unreadable, put the last complete
    backup back (moving the broken files aside). Returns what was done, or None if nothing was
    needed; raises ``ValueError`` when the state is broken and there is no backup."""
    exp = Path(experiment_dir)
    state = _newest_state(exp)
    if state is None or _readable(state):
        return None
    backup = exp / STATE_BACKUP
    saved = sorted(backup.glob("experiment_state-*.json")) if backup.exists() else []
    if not saved:
        raise ValueError(f"{state}: Ray's experiment state is truncated (the driver died while writing it) "
                         f"and no backup exists in {backup}; the search cannot be resumed")
    aside = exp / ".broken-state"
    aside.mkdir(exist_ok=True)
    for f in _state_files(state):
        f.rename(aside / f.name)
    for f in backup.iterdir():
        shutil.copy2(f, exp / f.name)
    return f"{state.name} was truncated; restored the last complete snapshot {saved[-1].name}"


def snapshot_trial_ids(experiment_dir: str | Path) -> set[str]:
    """The ids of the trials in Ray's newest experiment snapshot (what ``Tuner.restore`` brings
    back); empty when there is none. Call :func:`repair_experiment_state` first."""
    state = _newest_state(Path(experiment_dir))
    if state is None:
        return set()
    data = json.loads(state.read_text())
    # trial_data: [[trial state as a JSON string, runtime metadata], ...] (Ray 2.x)
    return {json.loads(trial[0])["trial_id"] for trial in data.get("trial_data", [])}


#: beside a trial's training state in each Ray Tune checkpoint: every result the trial reported up
#: to that checkpoint's epoch, oldest first (JSON), so epochs whose metrics never reached the
#: tracking store can be logged from it on resume (the trial continues after that epoch)
HISTORY_FILE = "metrics.json"
#: a trial's directory in the experiment directory (``tuner.trial_dirname``)
TRIAL_DIR_PREFIX = "trial_"


def checkpointed_history(experiment_dir: str | Path, trial_id: str) -> list[dict]:
    """The reported results kept with the trial's newest readable checkpoint (oldest first), or
    [] when it has none (not checkpointed, or no epoch finished)."""
    trial_dir = Path(experiment_dir) / f"{TRIAL_DIR_PREFIX}{trial_id}"
    for ckpt in sorted(trial_dir.glob("checkpoint_*"), reverse=True):
        try:
            history = json.loads((ckpt / HISTORY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # an older, pruned checkpoint, or one cut short
        if isinstance(history, list):
            return [r for r in history if isinstance(r, dict)]
    return []


class StateBackup:
    """Calls :func:`backup_experiment_state` when Ray's newest state changed, at most every
    ``min_interval_s`` and at most :data:`BACKUP_SHARE` of the driver's time: a backup copies and
    parses the whole state (it grows with the number of trials), so the interval stretches to
    ``last duration / BACKUP_SHARE`` when it gets expensive."""

    def __init__(self, experiment_dir: str | Path, min_interval_s: float = 0.5):
        self.dir, self.min_interval_s = Path(experiment_dir), min_interval_s
        self._at, self._cost, self._seen = -float("inf"), 0.0, None

    def maybe(self) -> bool:
        now = time.monotonic()
        if now - self._at < max(self.min_interval_s, self._cost / BACKUP_SHARE):
            return False
        self._at = now
        state = _newest_state(self.dir)
        if state is None:
            return False
        stamp = (state.name, state.stat().st_mtime_ns)
        if stamp == self._seen:
            return False
        done = backup_experiment_state(self.dir)
        self._cost = time.monotonic() - now
        if done:
            self._seen = stamp
        return done


#: the share of the driver's time a state backup may take
BACKUP_SHARE = 0.05
