"""The in-memory front (incremental non-dominated set) against moocore's full sorting."""

from __future__ import annotations

import numpy as np
import pytest

from gatesearch.search.front.live import LiveFront
from gatesearch.search.front.pareto import hypervolume, pareto_ranks

NAMES, MODES = ("accuracy", "macs_per_sample"), ("max", "min")


@pytest.mark.parametrize("seed", range(5))
def test_incremental_front_equals_full_sorting_after_every_trial(seed):
    rng = np.random.default_rng(seed)
    pts = np.round(rng.random((120, 2)), 2)  # rounding makes ties and duplicates
    pts[rng.integers(0, 120, 5)] = np.nan  # failed-metric rows are dominated by everything
    front = LiveFront(NAMES, MODES)
    ref = np.array([0.0, 1.1])
    for i, (a, m) in enumerate(pts):
        front.add(f"t{i}", f"r{i}", {"accuracy": a, "macs_per_sample": m}, {"trial": f"t{i}"})
        seen = pts[: i + 1]
        finite = np.isfinite(seen).all(axis=1)
        expected = {f"r{j}" for j in np.flatnonzero((pareto_ranks(seen, MODES) == 0) & finite)}
        assert {r["run_id"] for r in front.front_rows()} == expected
        assert front.hypervolume(ref) == pytest.approx(hypervolume(seen, MODES, ref))
    assert np.array_equal(front.ranks(), pareto_ranks(pts, MODES))


def test_rank_changes_hand_out_only_what_changed():
    front = LiveFront(NAMES, MODES)
    front.add("a", "ra", {"accuracy": 0.5, "macs_per_sample": 0.5}, {})
    assert front.rank_changes() == {"ra": 0}
    assert front.rank_changes() == {}
    front.add("b", "rb", {"accuracy": 0.9, "macs_per_sample": 0.1}, {})  # dominates a
    assert front.rank_changes() == {"ra": 1, "rb": 0}
    front.add("c", "rc", {"accuracy": 0.1, "macs_per_sample": 0.9}, {})  # dominated by both
    assert front.rank_changes() == {"rc": 2}


def test_hypervolume_share_is_one_for_a_single_ideal_point():
    front = LiveFront(NAMES, MODES)
    front.add("a", "ra", {"accuracy": 0.8, "macs_per_sample": 2.0}, {})
    assert front.hypervolume_share([0.0, 4.0]) == pytest.approx(1.0)
    front.add("b", "rb", {"accuracy": 0.4, "macs_per_sample": 1.0}, {})
    assert 0 < front.hypervolume_share([0.0, 4.0]) < 1


def test_front_csv_takes_every_column_of_rows_from_different_drivers():
    """After a resume, a trial restored from the store and one from the new driver can carry
    different columns; the CSV keeps them all (was: 'dict contains fields not in fieldnames')."""
    import csv
    import io

    from gatesearch.search.front.report import _csv

    rows = [{"run_id": "a", "accuracy": 0.9}, {"run_id": "b", "trial": "topk n4 k2 #2", "gate": "topk", "accuracy": 0.8}]
    parsed = list(csv.DictReader(io.StringIO(_csv(rows))))
    assert list(parsed[0]) == ["run_id", "accuracy", "trial", "gate"]
    assert parsed[0]["gate"] == "" and parsed[1]["gate"] == "topk" and parsed[1]["accuracy"] == "0.8"


def test_rank_changes_skip_only_ranks_the_store_already_holds():
    front = LiveFront(NAMES, MODES)
    front.add("a", "run-a", {"accuracy": 0.9, "macs_per_sample": 10.0}, {})
    front.add("b", "run-b", {"accuracy": 0.8, "macs_per_sample": 20.0}, {})
    front.mark_written("run-a", 0)  # read back from the store on resume; run-b never got its tag
    assert front.rank_changes() == {"run-b": 1}
    assert front.rank_changes() == {}


def test_resume_tags_a_finished_trial_whose_rank_was_never_written(tmp_path):
    """A trial that finished after the last rank write before the driver died had no pareto_rank
    tag; resume wrote none either (found by CI's driver-kill test)."""
    from gatesearch.objectives import get_objective
    from gatesearch.search.tracking.tracker import Tracker
    from gatesearch.search.tracking.trial_sink import MlflowTrialSink

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "resume-ranks", (tmp_path / "a").as_uri())
    parent = tracker.start_search("s1", "resume-ranks", {})
    runs = {}
    for tid, acc, macs in (("t1", 0.9, 10.0), ("t2", 0.8, 20.0)):
        runs[tid] = tracker.create_trial_run(parent, "s1", tid, tid)
        tracker.log_batch(runs[tid], metrics={"accuracy": acc, "macs_per_sample": macs}, step=1)
        tracker.end_run(runs[tid], "FINISHED")
    tracker.log_batch(runs["t1"], tags={"pareto_rank": 0})  # t2 finished after the last rank write
    sink = MlflowTrialSink(tracker, parent, "s1", get_objective("moe_digits"), {}, front_every=4, title="t")
    sink.restore(tracker.children(parent))
    sink.log_front(final=True)
    tags = {c.trial_id: c.tags.get("pareto_rank") for c in tracker.children(parent)}
    assert tags == {"t1": "0", "t2": "1"}


def test_resume_retires_orphans_before_the_front_is_restored(tmp_path):
    """Runs of trials that Ray's last snapshot never recorded (lost with a killed driver) are
    retired before the sink is restored: the resumed front and its hypervolume step never count
    them (they were on it until the search ended, so a hypervolume step passed the budget;
    found by CI's driver-kill test)."""
    import json

    from gatesearch.objectives import get_objective
    from gatesearch.search.lifecycle.runner import TAG_ORPHANED, _restore
    from gatesearch.search.tracking.tracker import Tracker
    from gatesearch.search.tracking.trial_sink import MlflowTrialSink

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "orphans", (tmp_path / "a").as_uri())
    parent = tracker.start_search("s1", "orphans", {})
    runs = {}
    for tid, status in (("t1", "FINISHED"), ("t2", "RUNNING"), ("t3", "FINISHED"), ("t4", "RUNNING")):
        runs[tid] = tracker.create_trial_run(parent, "s1", tid, tid)
        tracker.log_batch(runs[tid], metrics={"accuracy": 0.5 + int(tid[1]) / 10, "macs_per_sample": 10.0}, step=1)
        if status == "FINISHED":
            tracker.end_run(runs[tid], "FINISHED")
    exp = tmp_path / "exp"
    exp.mkdir()  # Ray's snapshot knows t1 and t2 only; t3 and t4 started after it
    trial_data = [[json.dumps({"trial_id": t, "stub": False}), "{}"] for t in ("t1", "t2")]
    (exp / "experiment_state-2026-01-01_00-00-00.json").write_text(json.dumps({"trial_data": trial_data}))

    sink = MlflowTrialSink(tracker, parent, "s1", get_objective("moe_digits"), {}, front_every=1, title="t")
    assert _restore(sink, tracker, parent, [exp]) == {"t3", "t4"}
    assert [e.trial_id for e in sink.front.entries] == ["t1"] and sink.finished == 1
    sink.reference = np.array([0.0, 20.0])
    sink.log_front(final=True)
    assert max(step for step, _ in tracker.metric_history(parent, "hypervolume")) == 1
    status = {c.trial_id: (c.status, TAG_ORPHANED in c.tags) for c in tracker.children(parent)}
    assert status == {"t1": ("FINISHED", False), "t2": ("RUNNING", False), "t3": ("KILLED", True), "t4": ("KILLED", True)}


def test_a_csv_cell_a_spreadsheet_would_run_is_neutralised_and_numbers_are_kept():
    import csv
    import io

    from gatesearch.search.front.report import _csv

    rows = [{"trial": "=HYPERLINK(\"http://x\",\"a\")", "gate": "@SUM(A1)", "lr": -0.5, "note": "-0.25",
             "tag": "+cmd", "plain": "topk"}]
    [back] = list(csv.DictReader(io.StringIO(_csv(rows))))
    assert back == {"trial": "'=HYPERLINK(\"http://x\",\"a\")", "gate": "'@SUM(A1)", "lr": "-0.5", "note": "-0.25",
                    "tag": "'+cmd", "plain": "topk"}


def test_markdown_in_run_names_and_values_is_escaped_in_the_parents_description():
    from gatesearch.search.front.report import front_markdown

    front = LiveFront(NAMES, MODES)
    front.add("t1", "r1", {"accuracy": 0.9, "macs_per_sample": 10.0},
              {"trial": "[click](http://evil) <img src=x onerror=alert(1)>", "gate": "*bold*|x"})
    text = front_markdown(front, [0.0, 20.0], 1.0, experiment_id="7")
    row = next(line for line in text.splitlines() if "r1" in line)
    assert "[\\[click\\]\\(http://evil\\) \\<img src=x onerror=alert\\(1\\)\\>](#/experiments/7/runs/r1" in row
    import re

    assert "\\*bold\\*\\|x" in row and not re.search(r"(?<!\\)[<>]", row)  # no raw HTML


def test_identical_objective_vectors_are_both_on_the_front():
    """Two configurations with the same trade-off: neither dominates the other, so both are on the
    front (the docs say so); a third that is worse in one objective is not."""
    front = LiveFront(NAMES, MODES)
    for tid in ("a", "b"):
        front.add(tid, f"r{tid}", {"accuracy": 0.9, "macs_per_sample": 100.0}, {"trial": tid})
    front.add("c", "rc", {"accuracy": 0.9, "macs_per_sample": 101.0}, {"trial": "c"})
    assert {r["run_id"] for r in front.front_rows()} == {"ra", "rb"}
    assert list(front.ranks()) == [0, 0, 1]
