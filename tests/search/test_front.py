"""The in-memory front (incremental non-dominated set) against moocore's full sorting."""

from __future__ import annotations

import numpy as np
import pytest

from gatesearch.search.front import LiveFront
from gatesearch.search.pareto import hypervolume, pareto_ranks

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

    from gatesearch.search.front_report import _csv

    rows = [{"run_id": "a", "accuracy": 0.9}, {"run_id": "b", "trial": "topk n4 k2 #2", "gate": "topk", "accuracy": 0.8}]
    parsed = list(csv.DictReader(io.StringIO(_csv(rows))))
    assert list(parsed[0]) == ["run_id", "accuracy", "trial", "gate"]
    assert parsed[0]["gate"] == "" and parsed[1]["gate"] == "topk" and parsed[1]["accuracy"] == "0.8"
