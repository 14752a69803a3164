"""A tracking write that lands but whose answer is lost (a tracking server or its database restarting
mid-request) is retried by the outbox: the retry must not log an epoch twice or give a trial a second
child run (found by the PostgreSQL restart load test: an epoch's four metrics logged twice)."""

from __future__ import annotations

from gatesearch.objectives import get_objective
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.search.tracking.trial_sink import MlflowTrialSink


class LandsThenFails:
    """A store whose next write of a kind is applied, then reported as failed."""

    def __init__(self, inner: Tracker):
        self.inner, self.lose = inner, set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def log_batch(self, run_id, **kw):
        self.inner.log_batch(run_id, **kw)
        if "log_batch" in self.lose:
            self.lose.discard("log_batch")
            raise ConnectionError("the answer was lost")

    def create_trial_run(self, *args):
        run = self.inner.create_trial_run(*args)
        if "create_trial_run" in self.lose:
            self.lose.discard("create_trial_run")
            raise ConnectionError("the answer was lost")
        return run


def _retried(call, *args) -> None:
    """What the outbox does: the whole call again after a transient failure."""
    try:
        call(*args)
    except ConnectionError:
        call(*args)


def test_a_retried_write_whose_first_attempt_landed_is_not_logged_twice(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "lost", (tmp_path / "a").as_uri())
    parent = tracker.start_search("s1", "lost", {})
    store = LandsThenFails(tracker)
    sink = MlflowTrialSink(store, parent, "s1", get_objective("moe_digits"), {"epochs": 2}, front_every=0)
    config = {"gate": "topk", "n_experts": 4, "k": 1}
    store.lose.add("create_trial_run")
    _retried(sink.on_start, "t1", config)
    for epoch in (1, 2):
        store.lose.add("log_batch")
        _retried(sink.on_result, "t1", {"accuracy": 0.5 + epoch / 10, "macs_per_sample": 100.0, "epoch": epoch,
                                        "epochs_total": 2, "config": config})
    [child] = tracker.children(parent)  # one run, though its creation was retried
    for key in ("accuracy", "macs_per_sample", "epoch"):
        assert sorted(step for step, _ in tracker.metric_history(child.run_id, key)) == [1, 2], key
    # and a write that failed before landing is still written by the retry
    store.lose.clear()
    sink._unsure.add(("t1", 3))
    sink.on_result("t1", {"accuracy": 0.9, "macs_per_sample": 100.0, "epoch": 3, "epochs_total": 2, "config": config})
    assert sorted(step for step, _ in tracker.metric_history(child.run_id, "accuracy")) == [1, 2, 3]
