"""Pareto ranks and hypervolume against brute force."""

import numpy as np
import pytest

from gatesearch.search.front.pareto import front_mask, hypervolume, pareto_ranks, reference_point


def brute_front(values, modes):
    sign = np.array([-1.0 if m == "max" else 1.0 for m in modes])
    v = values * sign
    out = []
    for i in range(len(v)):
        dominated = any((v[j] <= v[i]).all() and (v[j] < v[i]).any() for j in range(len(v)) if j != i)
        out.append(np.isfinite(v[i]).all() and not dominated)
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_front_matches_brute_force_with_mixed_directions(seed):
    rng = np.random.default_rng(seed)
    values = np.c_[rng.random(40), rng.integers(0, 10, 40).astype(float)]  # ties on purpose
    modes = ["max", "min"]
    assert (front_mask(values, modes) == brute_front(values, modes)).all()
    ranks = pareto_ranks(values, modes)
    rest = ranks > 0
    # the second layer is the front of what remains
    second = brute_front(values[rest], modes)
    assert (ranks[rest][second] == 1).all()


def test_nan_rows_are_dominated():
    values = np.array([[0.9, 10.0], [np.nan, 1.0], [0.5, 5.0]])
    ranks = pareto_ranks(values, ["max", "min"])
    assert ranks.tolist() == [0, 1, 0]
    assert front_mask(values, ["max", "min"]).tolist() == [True, False, True]


def test_hypervolume_of_a_staircase():
    values = np.array([[0.5, 2.0], [0.8, 4.0], [0.3, 6.0]])  # third point dominated
    hv = hypervolume(values, ["max", "min"], [0.0, 10.0])
    assert hv == pytest.approx(0.5 * 8 + 0.3 * 6)
    # observed nadir (0.3, 6.0) moved out by 10 % of the observed ranges (0.5 and 4.0)
    ref = reference_point(values, ["max", "min"])
    assert ref.tolist() == [pytest.approx(0.25), pytest.approx(6.4)]
    assert hypervolume(values, ["max", "min"], ref) > 0  # every observed trial adds volume
    assert (values[:, 0] > ref[0]).all() and (values[:, 1] < ref[1]).all()


def test_reference_point_of_one_observation_and_of_none():
    assert reference_point(np.array([[0.5, 2.0]]), ["max", "min"]).tolist() == [pytest.approx(0.45), pytest.approx(2.2)]
    assert reference_point(np.array([[0.0, 0.0]]), ["max", "min"]).tolist() == [pytest.approx(-0.1), pytest.approx(0.1)]
    assert reference_point(np.full((1, 2), np.nan), ["max", "min"]).tolist() == [0.0, 1.0]


def test_bad_mode():
    with pytest.raises(ValueError, match="modes must be"):
        pareto_ranks(np.zeros((2, 2)), ["max", "up"])
