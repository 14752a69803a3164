"""One trial on a Ray worker: resolve the configuration once, run the objective, report every epoch
to Tune (with a checkpoint of the epoch's training state for objectives that keep one)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import ray
from ray import tune

from gatesearch.objectives import get_objective
from gatesearch.objectives.base import checkpoints_trials
from gatesearch.objectives.metrics import EPOCHS_TOTAL, RESUMED_FROM
from gatesearch.objectives.reports import EpochReports
from gatesearch.search.config.settings import SearchSettings
from gatesearch.search.ray.checkpoints import jsonable, load_state, new_checkpoint, prune_states
from gatesearch.search.ray.state import TRIAL_DIR_PREFIX
from gatesearch.search.system import dir_guard
from gatesearch.spaces import trial_configuration


def trial_dirname(trial) -> str:
    """``trial_<trial id>``: short paths, and the id is recoverable from the directory name."""
    return f"{TRIAL_DIR_PREFIX}{trial.trial_id}"


def _placement(use_gpu: bool) -> dict[str, Any]:
    """Where this trial runs: the device, the GPUs Ray gave it, the node."""
    import torch

    device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
    node_id = ray.get_runtime_context().get_node_id()
    # the address the node registered with (ray start --node-ip-address), not a guess from routing
    node_ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id),
                   ray.util.get_node_ip_address())
    return {"device": device, "gpu_ids": ",".join(str(g) for g in ray.get_gpu_ids()), "node_ip": node_ip,
            "node_id": node_id}


def run_trial(config: dict, objective_name: str, fixed: dict, threads: int | None, use_gpu: bool | None,
              objective: Any = None, plugins: Sequence[str] = (), umask: int | None = None) -> None:
    """One trial: import the space's plugins, resolve the configuration, run the objective, report
    every epoch to Tune.

    Every report goes through :class:`~gatesearch.objectives.reports.EpochReports`: it numbers
    epochs the objective does not number, and fails the trial (with the reason) on a non-finite
    or missing objective value, at the epoch it appears or in ``run``'s return value. For
    checkpointing objectives each report carries the epoch's training state, and the results so
    far are kept beside it (:mod:`~gatesearch.search.ray.checkpoints`)."""
    import os

    import torch

    if umask is not None:  # the driver's (owner-only): checkpoints this worker writes, even on a Ray started before
        os.umask(umask)
    if plugins:  # a user's gates, registered in this worker before the configuration is read
        from gatesearch.objectives.plugins import import_plugins

        import_plugins(plugins)
    if threads is None or use_gpu is None:  # resources per configuration: what Ray gave this trial
        assigned = ray.get_runtime_context().get_assigned_resources()
        threads, use_gpu = int(max(1, assigned.get("CPU", 1))), assigned.get("GPU", 0) > 0
    torch.set_num_threads(max(1, threads))
    placement = _placement(use_gpu)
    device = placement["device"]
    objective = objective if objective is not None else get_objective(objective_name)
    full = objective.resolve(trial_configuration(fixed, config))  # once: the objective's own resolve() returns it as is
    placement[EPOCHS_TOTAL.name] = int(full.get("epochs", 0))
    names = [m.name for m in objective.objectives]
    if not checkpoints_trials(objective):
        reports = EpochReports(names, lambda m: tune.report({**m, **placement}))
        reports.finish(objective.run(full, report=reports, device=device))
        return
    # Per-epoch checkpoints (Ray Tune's API; see checkpoints.py for what is kept): a trial restarted
    # after a node death, a retry or `gatesearch resume` continues after its last epoch, and since it
    # reports only the epochs it trains, no epoch reaches MLflow twice.
    restore, pending = None, []
    last = tune.get_checkpoint()
    if last is not None:
        restore = load_state(last, device)
    history: list[dict] = list(restore.pop("history", [])) if restore is not None else []
    if restore is not None:
        placement[RESUMED_FROM.name] = int(restore["epoch"])
        if restore.get("metrics"):
            # the restored epoch's report again: if the trial had finished, its result was lost with a
            # stale experiment snapshot; otherwise the scheduler may never have seen it (trained and
            # checkpointed while the search was stopping), and MO-ASHA decides at a rung there
            # (stop, pause, continue). The tracking sink logs an epoch once, so it is not logged twice.
            tune.report({**restore["metrics"], **placement})
            if int(restore["epoch"]) >= int(full.get("epochs", 0)):
                return

    def send(metrics):
        result = {**metrics, **placement}
        if not pending:
            tune.report(result)
            return
        state = pending.pop()
        state["metrics"] = dict(metrics)  # a trial restored after its last epoch reports these
        history.append(jsonable(result))
        with new_checkpoint(state, history) as checkpoint:
            tune.report(result, checkpoint=checkpoint)
        prune_states(tune.get_checkpoint())  # now the one just persisted

    reports = EpochReports(names, send, first_epoch=int(restore["epoch"]) + 1 if restore is not None else 1)
    reports.finish(objective.run(full, report=reports, device=device, restore=restore, save=pending.append))


class Placement:
    """``config -> PlacementGroupFactory`` for Tune (resources per configuration; picklable)."""

    def __init__(self, resources: Callable[[Mapping[str, Any]], tuple[float, float]]):
        self.resources = resources

    def __call__(self, config: Mapping[str, Any]):
        from ray.tune.execution.placement_groups import PlacementGroupFactory

        cpus, gpus = self.resources(config)
        return PlacementGroupFactory([{"CPU": cpus, **({"GPU": gpus} if gpus > 0 else {})}])


def trainable(objective_name: str, fixed: Mapping[str, Any], settings: SearchSettings, objective: Any = None,
              plugins: Sequence[str] = (), resources: Callable[[Mapping[str, Any]], tuple[float, float]] | None = None):
    """The Tune trainable with its resources. ``objective``: an objective instance to ship to the
    workers (a user's training function, whose metrics come from the space file); None: the
    workers look ``objective_name`` up in the registry. ``plugins``: modules each worker imports
    first (the space file's ``plugins:``). ``resources``: ``config -> (cpus, gpus)`` per
    configuration (:class:`~gatesearch.search.config.resources.TrialResources`); None: ``search:``'s."""
    per_config = resources is not None
    fn = tune.with_parameters(run_trial, objective_name=objective_name, fixed=dict(fixed),
                              threads=None if per_config else int(max(1, settings.cpus_per_trial)),
                              use_gpu=None if per_config else settings.gpus_per_trial > 0,
                              objective=objective, plugins=tuple(plugins), umask=dir_guard.umask())
    if per_config:
        return tune.with_resources(fn, Placement(resources))
    return tune.with_resources(fn, {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial})
