"""Guarantee: a search whose driver is SIGKILLed mid-way is finished by `gatesearch resume`:
exactly the budget of finished trials, one child run per trial, the same parent run, and a
logged front equal to the one recomputed from the finished children."""

import json
import re
import signal
import uuid
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.front.report import read_front
from gatesearch.search.ray import RUNGS_FILE
from gatesearch.search.tracking.tracker import Tracker
from tests import harness

BUDGET = 8
SPACE = f"""\
name: killed
objective: moe_digits
search: {{searcher: tpe, num_samples: {BUDGET}, max_concurrent: 2, seed: 5, front_every: 2}}
fixed: {{epochs: 10, expert_hidden: 32, expert_out: 16}}
params:
  gate: {{type: categorical, choices: [topk, hash, softmax]}}
  n_experts: {{type: int, low: 2, high: 8}}
  k: {{type: int, low: 1, high: 2}}
  lr: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true}}
"""


def _run_and_kill(tmp_path: Path, marker: str, until=None, what: str = "2 finished trials"):
    """Run space.yaml and SIGKILL the driver once ``until(out, db)`` holds (default: 2 finished
    trials). Returns (output dir, MLflow db)."""
    key, value = marker.split("=")
    out, db = tmp_path / "out", tmp_path / "out" / "mlflow.db"
    until = until or (lambda out, db: harness.finished_children(db) >= 2)
    log = tmp_path / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", log=log, **{key: value})
    try:
        harness.wait_for(lambda: until(out, db), 240, what, proc, log)
        proc.send_signal(signal.SIGKILL)  # the driver only, mid-search
        proc.wait(timeout=30)
    finally:
        harness.kill_env(marker)  # Ray agents a SIGKILLed driver leaves behind
    return out, db


def _resume(tmp_path: Path, target: str, marker: str) -> Path:
    """`gatesearch resume target` to the end (exit 0); returns its log."""
    key, value = marker.split("=")
    resume_log = tmp_path / "resume.log"
    resumed = harness.gatesearch("resume", target, log=resume_log, **{key: value})
    try:
        assert resumed.wait(timeout=400) == 0, harness.tail(resume_log)
    finally:
        harness.kill_env(marker)
    return resume_log


@pytest.mark.slow
def test_driver_killed_while_ray_writes_its_state_is_resumed(tmp_path: Path):
    """Ray writes experiment_state-*.json in place; a kill mid-write leaves it truncated. Resume
    puts back the last complete snapshot (kept by our callback) and still finishes the budget."""
    (tmp_path / "space.yaml").write_text(SPACE)
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    out, db = _run_and_kill(tmp_path, marker)
    [search_dir] = list((out / "ray").iterdir())
    [state] = sorted(search_dir.glob("experiment_state-*.json"))[-1:]
    assert list((search_dir / ".gatesearch-state").glob("experiment_state-*.json")), "no backup was kept"
    state.write_text(state.read_text()[:200])  # what a kill during json.dump leaves behind
    _resume(tmp_path, str(search_dir), marker)
    tracker = Tracker(f"sqlite:///{db}", "killed")
    [(parent, _)] = tracker.searches()
    children = tracker.children(parent)
    assert sum(c.status == "FINISHED" for c in children) == BUDGET
    assert len({c.trial_id for c in children}) == len(children)
    assert (search_dir / ".broken-state" / state.name).exists()  # the truncated file was kept aside


def _running_epochs(db: Path) -> int:
    """Epochs of accuracy logged so far by child runs that are still RUNNING."""
    return harness.sqlite_count(db, "select count(*) from metrics m join runs r on m.run_uuid = r.run_uuid "
                                    "where m.key = 'accuracy' and r.status = 'RUNNING'")


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_sigkilled_driver_is_resumed_without_duplicates(tmp_path: Path):
    """The driver SIGKILLed at a random moment while trials train (after a random number of epochs
    and a random fraction of a second, so the kill lands anywhere between a trial's checkpoint and
    its metrics reaching MLflow), then resumed: the budget finishes with one child run per trial,
    the same parent, the logged front equal to the recomputed one, and every finished child's
    history exactly epochs 1..E, each once (the epochs checkpointed but not yet logged when the
    driver died are written from the metrics kept beside the checkpoint)."""
    import random
    import time

    seed = random.randrange(10**6)
    rng = random.Random(seed)
    epochs, delay = rng.randint(1, 9), rng.uniform(0, 1.5)  # <= 9: one running trial reaches it alone
    (tmp_path / "space.yaml").write_text(SPACE)
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"

    def until(out, db):
        if _running_epochs(db) >= epochs:
            time.sleep(delay)
            return True
        return False

    out, db = _run_and_kill(tmp_path, marker, until=until, what=f"{epochs} epochs logged (seed {seed})")
    finished_before = harness.finished_children(db)
    assert finished_before < BUDGET, "the search finished before it could be killed; make trials longer"

    resume_log = _resume(tmp_path, "out", marker)
    assert "Pareto front of killed" in resume_log.read_text()
    # resume shows the same live progress as run (plain lines: the log is not a terminal)
    progress = [line for line in resume_log.read_text().splitlines() if line.startswith("[")]
    assert re.search(r"search started: \d+ trials of \S+", progress[0]), progress[:2]
    assert "search ended: " in progress[-1] and " finished, 0 running" in progress[-1]

    uri = f"sqlite:///{db}"
    tracker = Tracker(uri, "killed")
    parents = tracker.searches()
    assert len(parents) == 1  # the same parent run, not a second search
    parent = parents[0][0]
    client = MlflowClient(uri)
    assert client.get_run(parent).info.status == "FINISHED"
    assert client.get_run(parent).data.tags["gatesearch.resumes"] == "1"
    children = tracker.children(parent)
    finished = [c for c in children if c.status == "FINISHED"]
    assert len(finished) == BUDGET
    trial_ids = [c.trial_id for c in children]
    assert len(trial_ids) == len(set(trial_ids))  # one child run per trial
    # anything else is a trial lost between Ray snapshots, retired with a reason
    for c in children:
        if c.status != "FINISHED":
            assert c.status == "KILLED" and "gatesearch.orphaned" in c.tags, (c.status, c.tags)

    for c in finished:  # every epoch in MLflow exactly once, none lost with the driver
        steps = sorted(step for step, _ in tracker.metric_history(c.run_id, "accuracy"))
        assert steps == list(range(1, 11)), (seed, c.trial_id, steps)

    # the front logged on the parent equals the one recomputed from every finished child
    names, modes = ("accuracy", "macs_per_sample"), ("max", "min")
    _, values, ranks, rows, front = read_front(tracker, parent, names, modes)
    assert len(rows) == BUDGET
    logged = json.loads(Path(client.download_artifacts(parent, "pareto_front.json", str(tmp_path))).read_text())
    assert sorted(r["run_id"] for r in logged["front"]) == sorted(r["run_id"] for r in front)
    assert all(c.tags["pareto_rank"] == str(int(r)) for c, r in zip(finished, ranks))
    # the hypervolume history on the parent ends at the full budget
    hv = tracker.metric_history(parent, "hypervolume")
    assert max(step for step, _ in hv) == BUDGET and np.isfinite([v for _, v in hv]).all()


def test_truncated_state_without_backup_is_a_clear_error(tmp_path: Path):
    from gatesearch.search.ray.state import backup_experiment_state, repair_experiment_state

    (tmp_path / "experiment_state-2026-01-01_00-00-00.json").write_text('{"trial_data": [')
    assert backup_experiment_state(tmp_path) is False  # an unreadable state is never backed up
    with pytest.raises(ValueError, match="truncated .* no backup exists"):
        repair_experiment_state(tmp_path)
    good = tmp_path / "experiment_state-2026-01-01_00-00-00.json"
    good.write_text('{"trial_data": []}')
    assert backup_experiment_state(tmp_path) is True and repair_experiment_state(tmp_path) is None
    good.write_text('{"trial_')
    assert "restored the last complete snapshot" in repair_experiment_state(tmp_path)
    assert json.loads(good.read_text()) == {"trial_data": []}


ASHA_SPACE = f"""\
name: killed-asha
objective: tests.reliability.faulty:FaultyDigits
search: {{searcher: random, num_samples: {BUDGET}, max_concurrent: 2, seed: 5, scheduler: moasha, moasha_eta: 2}}
fixed: {{epochs: 6, sleep_s: 0.4, expert_hidden: 16, expert_out: 8, fault: none}}
params:
  gate: {{type: categorical, choices: [topk, hash, softmax]}}
  lr: {{type: float, low: 1.0e-3, high: 3.0e-2, log: true}}
"""


def _rungs(records: dict) -> dict:
    """The rung records proper (``{epoch: {trial: values}}``), without the ``promoted``/``stopped`` lists."""
    return {m: rung for m, rung in records.items() if m.isdigit()}


def _rung_records(search_root: Path) -> dict:
    files = list(search_root.glob(f"*/{RUNGS_FILE}"))
    try:
        return json.loads(files[0].read_text()) if files else {}
    except (OSError, ValueError):
        return {}


@pytest.mark.slow
def test_a_killed_moasha_search_keeps_its_rungs_across_resume(tmp_path: Path):
    """MO-ASHA's rung records (Ray never saves a scheduler's state) survive a driver kill: the
    records of trials that reached a rung before the kill are still in the rung file after
    `gatesearch resume`, the records the resumed search makes land there too (every trial has a
    record at every rung it reached, so a second kill loses nothing), and the resumed search
    finishes its budget with the early-stopped trials marked as such."""
    (tmp_path / "space.yaml").write_text(ASHA_SPACE)
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    out, db = _run_and_kill(tmp_path, marker, until=lambda out, db: sum(map(len, _rungs(_rung_records(out / "ray")).values())) >= 3,
                            what="3 rung records")
    [search_dir] = list((out / "ray").iterdir())
    before = _rung_records(out / "ray")
    _resume(tmp_path, str(search_dir), marker)
    after = _rung_records(out / "ray")
    for epoch, rung in _rungs(before).items():  # every record made before the kill is still there
        assert {t: after[epoch][t] for t in rung} == rung
    tracker = Tracker(f"sqlite:///{db}", "killed-asha")
    [(parent, _)] = tracker.searches()
    children = [c for c in tracker.children(parent) if "gatesearch.orphaned" not in c.tags]
    assert len(children) == BUDGET and {c.status for c in children} <= {"FINISHED", "KILLED"}
    assert all("gatesearch.early_stopped_at_epoch" in c.tags for c in children if c.status == "KILLED")
    # rungs at 1, 2, 4 epochs (grace 1, eta 2, 6 epochs): a trial has a record at each rung it reached
    assert sorted(map(int, _rungs(after))) == [1, 2, 4]
    # a trial stopped at a rung before the kill stays stopped there (Ray may restore it from an older
    # snapshot, before the decision: it reports that rung again and is stopped again)
    stopped_before = {(m, t) for m, ids in before.get("stopped", {}).items() for t in ids}
    assert stopped_before <= {(m, t) for m, ids in after.get("stopped", {}).items() for t in ids}
    status = {c.trial_id: c for c in children}
    for m, t in stopped_before:
        assert status[t].status == "KILLED" and status[t].tags["gatesearch.early_stopped_at_epoch"] == m, (t, m)
    for c in children:
        reached = int(c.tags.get("gatesearch.early_stopped_at_epoch", 6))
        missing = [m for m in _rungs(after) if int(m) <= reached and c.trial_id not in after[m]]
        assert not missing, (c.trial_id, reached, missing, after)



PROMOTE_SPACE = ASHA_SPACE.replace("name: killed-asha", "name: killed-promote").replace(
    "scheduler: moasha, moasha_eta: 2", "scheduler: moasha, moasha_eta: 2, moasha_mode: promote")


@pytest.mark.slow  # over 30 s; `make test-all` and CI (make test-slow) run it
def test_a_killed_promotion_search_resumes_its_paused_trials(tmp_path: Path):
    """Promotion MO-ASHA whose driver is SIGKILLed while trials wait at rungs: `gatesearch resume`
    keeps them waiting (Ray restores them as pending; the scheduler pauses them again), promotes
    from the records made before the kill, and finishes the budget: every trial once, every epoch
    logged once, the never-promoted ended at their rung."""
    (tmp_path / "space.yaml").write_text(PROMOTE_SPACE)
    marker = f"GATESEARCH_TEST_RUN={uuid.uuid4().hex}"
    out, db = _run_and_kill(tmp_path, marker, until=lambda out, db: len(_rung_records(out / "ray").get("1", {})) >= 4,
                            what="4 trials at rung 1")
    [search_dir] = list((out / "ray").iterdir())
    before = _rung_records(out / "ray")
    _resume(tmp_path, str(search_dir), marker)
    after = _rung_records(out / "ray")
    assert {t: after["1"][t] for t in before["1"]} == before["1"]
    for m, ids in before.get("promoted", {}).items():  # a promotion made before the kill stands
        assert set(ids) <= set(after["promoted"][m])
    client = MlflowClient(f"sqlite:///{db}")
    tracker = Tracker(f"sqlite:///{db}", "killed-promote")
    [(parent, _)] = tracker.searches()
    children = [c for c in tracker.children(parent) if "gatesearch.orphaned" not in c.tags]
    assert len(children) == BUDGET and {c.status for c in children} <= {"FINISHED", "KILLED"}
    promoted = {m: set(ids) for m, ids in after["promoted"].items()}
    for c in children:
        steps = [m.step for m in client.get_metric_history(c.run_id, "epoch")]
        assert steps == list(range(1, len(steps) + 1)), (c.trial_id, steps)
        if c.status == "KILLED":  # waited at its last rung and was never promoted from it
            rung = int(c.tags["gatesearch.early_stopped_at_epoch"])
            assert rung == len(steps) in (1, 2, 4) and c.trial_id not in promoted.get(str(rung), set())
        else:
            assert len(steps) == 6
        # ranked at every rung it reached, including one trained while the driver died (restored
        # from that epoch's checkpoint, it reports the epoch again)
        missing = [m for m in ("1", "2", "4") if int(m) <= len(steps) and c.trial_id not in after[m]]
        assert not missing, (c.trial_id, len(steps), missing)
