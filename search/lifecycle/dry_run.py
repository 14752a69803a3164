"""``gatesearch try space.yaml``: one trial in this process, in seconds, before a search spends its budget.

No Ray, no tracking store, nothing written. The space file is validated as ``run`` would; one
configuration is drawn (relations met; ``--seed``), the number of epochs cut to ``epochs`` (1 by
default) where the configuration has one, and the objective run on the CPU (or ``device``) through
the same :class:`~gatesearch.objectives.reports.EpochReports` a trial uses, with a checkpointing
objective's ``save`` called as in a trial (each state is written and read back the way a trial's
checkpoint is). What it reports per epoch, the time per epoch and the checks are returned as a
:class:`DryRun`; an error is caught and described in our words: the user's ``file:line`` for an
exception raised in their code, our message for what the search cannot use (a missing or
non-numeric metric, a missing configuration key).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Mapping

from gatesearch.spaces import SpaceFile, trial_configuration


@dataclass
class DryRun:
    """What one dry-run trial did."""

    config: dict[str, Any]
    objectives: tuple[tuple[str, str], ...]  # (name, mode)
    reports: list[dict[str, Any]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # wall seconds per reported epoch
    saved_states: int = 0
    epochs_note: str = ""
    error: str = ""  # "" when every check passed
    where: str = ""  # file:line of the user's code that raised, when it did

    @property
    def ok(self) -> bool:
        return not self.error


def _user_frame(exc: BaseException) -> str:
    """``file:line`` of the deepest frame in the user's own code (not an installed package, the
    standard library or gatesearch: a missing config key raised by us is placed at the user's line
    that read it), or ''."""
    from gatesearch.search.lifecycle.trial_error import user_location

    return user_location(traceback.format_exception(exc))


def dry_run(sf: SpaceFile, *, seed: int = 0, epochs: int | None = 1, device: str = "cpu",
            config: Mapping[str, Any] | None = None) -> DryRun:
    """Validate ``sf`` and run one trial of it in this process (see the module). ``config``: values
    to use instead of drawn ones; ``epochs``: the epochs to train (None: as the space says)."""
    from gatesearch.objectives.base import checkpoints_trials
    from gatesearch.objectives.checkpoint import load_state, save_state
    from gatesearch.objectives.reports import EpochReports, ObjectiveOutputError
    from gatesearch.search.config.validate import validate_space_file

    objective, _ = validate_space_file(sf)
    drawn = {**sf.space.sample(random.Random(seed)), **dict(config or {})}
    full_config = trial_configuration(sf.fixed, drawn)
    note = ""
    if epochs is not None and "epochs" in full_config and full_config["epochs"] != epochs:
        note = f"epochs {full_config['epochs']} -> {epochs} for the dry run"
        full_config["epochs"] = epochs
    out = DryRun(config=drawn, objectives=tuple((m.name, m.mode) for m in objective.objectives), epochs_note=note)
    last = [time.perf_counter()]

    def send(metrics: dict[str, Any]) -> None:
        now = time.perf_counter()
        out.reports.append(dict(metrics))
        out.seconds.append(now - last[0])
        last[0] = now

    reports = EpochReports([m.name for m in objective.objectives], send)
    kwargs: dict[str, Any] = {}
    if checkpoints_trials(objective):
        scratch = tempfile.mkdtemp(prefix="gstry")

        def save(state: Mapping[str, Any]) -> None:  # as a trial's checkpoint: written, then read back
            save_state(state, scratch)
            with open(os.path.join(scratch, "state.pt"), "rb") as f:
                load_state(f.read(), device)
            out.saved_states += 1

        kwargs = {"restore": None, "save": save}
    try:
        full = objective.resolve(full_config)
        returned = objective.run(full, report=reports, device=device, **kwargs)
        reports.finish(returned)
    except ObjectiveOutputError as e:
        out.error, out.where = str(e), _user_frame(e)
    except Exception as e:  # noqa: BLE001 - the user's code: described, never raised from here
        where = _user_frame(e)
        first = (str(e).strip().splitlines() or [""])[0][:500]
        out.error, out.where = f"{type(e).__name__}: {first}", where
    return out
