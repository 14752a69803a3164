"""Guarantee: a trial that crashes after epoch e and is retried (FailureConfig) continues from
its epoch-e checkpoint: it trains only the remaining epochs, MLflow gets every epoch once, and the
checkpoints' disk use is one training state per trial (older checkpoints keep an empty directory)."""

import json
from pathlib import Path

from mlflow.tracking import MlflowClient

from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import parse_space_file


def test_a_retried_trial_continues_from_its_last_checkpoint(ray_session, tmp_path: Path):
    marker, log = tmp_path / "crashed", tmp_path / "epochs.log"
    space = f"""\
name: restart
objective: tests.reliability.faulty:CrashOnceDigits
search: {{searcher: random, num_samples: 1, max_concurrent: 1, seed: 0, max_failures: 1}}
fixed: {{epochs: 5, crash_after: 2, marker: "{marker}", epoch_log: "{log}", gate: topk, n_experts: 4,
        expert_hidden: 16, expert_out: 8}}
params:
  lr: {{type: float, low: 1.0e-3, high: 1.0e-2, log: true}}
"""
    result = run_search(parse_space_file(space, str(tmp_path / "restart.yaml")), output_dir=tmp_path / "runs")
    assert marker.exists(), "the trial never crashed: the test tests nothing"
    assert log.read_text().split() == ["1", "2", "3", "4", "5"]  # epochs 1-2 were not trained again
    [child] = Tracker(result.tracking_uri, "restart").children(result.parent_run_id)
    assert child.status == "FINISHED" and child.tags["gatesearch.retries"] == "1"
    client = MlflowClient(result.tracking_uri)
    steps = [m.step for m in client.get_metric_history(child.run_id, "accuracy")]
    assert sorted(steps) == [1, 2, 3, 4, 5]  # each epoch once
    assert child.metrics["resumed_from_epoch"] == 2
    trial_dirs = list(Path(result.search_dir).glob("trial_*"))
    assert len(trial_dirs) == 1
    # one checkpoint directory per epoch trained (2 before the crash, 3 after); only the newest
    # holds a training state, about 3x the fp32 model (parameters, Adam's two moments, RNG states)
    import torch

    ckpts = sorted(trial_dirs[0].glob("checkpoint_*"))
    assert len(ckpts) == 5
    assert [(c / "state.pt").exists() for c in ckpts] == [False] * 4 + [True]
    state = torch.load(ckpts[-1] / "state.pt", weights_only=True)
    model_bytes = sum(v.numel() * v.element_size() for v in state["model"].values())
    assert state["epoch"] == 5 and state["metrics"]["epoch"] == 5
    assert (ckpts[-1] / "state.pt").stat().st_size < 3 * model_bytes + 64 * 1024
    # besides it only the epochs' reported metrics (metrics.json: what resume writes if the driver died
    # before they reached MLflow), one entry per epoch trained, small
    history = json.loads((ckpts[-1] / "metrics.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5] and history[-1]["accuracy"] == state["metrics"]["accuracy"]
    assert sorted(f.name for c in ckpts for f in c.iterdir()) == ["metrics.json", "state.pt"]
    assert (ckpts[-1] / "metrics.json").stat().st_size < 16 * 1024


def test_a_restored_checkpoint_older_than_the_newest_continues_from_the_newest(tmp_path: Path):
    """After a driver kill, Ray's snapshot can name an older checkpoint whose state was pruned:
    the trial loads the newest readable state among its checkpoints, skips a cut-short one, and
    starts over only when none is readable."""
    import torch
    from ray import tune

    from gatesearch.search.ray.checkpoints import load_state as _load_state
    from gatesearch.search.ray.checkpoints import prune_states as _prune_states

    trial = tmp_path / "trial_x"
    for i in range(4):
        (trial / f"checkpoint_00000{i}").mkdir(parents=True)
        torch.save({"epoch": i + 1}, trial / f"checkpoint_00000{i}" / "state.pt")
    _prune_states(tune.Checkpoint.from_directory(str(trial / "checkpoint_000002")))
    assert [(trial / f"checkpoint_00000{i}" / "state.pt").exists() for i in range(4)] == [False, False, True, True]
    stale = tune.Checkpoint.from_directory(str(trial / "checkpoint_000000"))  # pruned: no state
    assert _load_state(stale, "cpu")["epoch"] == 4
    (trial / "checkpoint_000003" / "state.pt").write_bytes(b"cut short")  # the node died while writing it
    assert _load_state(stale, "cpu")["epoch"] == 3
    (trial / "checkpoint_000002" / "state.pt").unlink()
    (trial / "checkpoint_000003" / "state.pt").unlink()
    assert _load_state(stale, "cpu") is None
