"""The front figures: the cost axis turns logarithmic when it spans more than a decade."""

import numpy as np

from gatesearch.search.front.figure import log_axis, pareto_figure, pareto_html


def _values(costs):
    return np.array([[0.9 - 0.01 * i, c] for i, c in enumerate(costs)])


def test_a_cost_axis_over_a_decade_is_logarithmic_in_both_figures():
    wide, narrow = _values([1_000, 2_000, 50_000]), _values([1_000, 2_000, 9_000])
    front = np.array([True, True, False])
    assert log_axis(wide[:, 1]) and not log_axis(narrow[:, 1])
    assert not log_axis(np.array([0.0, 100.0])) and not log_axis(np.array([]))  # log needs positive values
    names, modes = ("accuracy", "macs_per_sample"), ("max", "min")
    assert pareto_figure(wide, front, names, modes).axes[0].get_xscale() == "log"
    assert pareto_figure(narrow, front, names, modes).axes[0].get_xscale() == "linear"
    rows = [{"trial": f"t{i}", "run_id": str(i)} for i in range(3)]
    assert '"type":"log"' in pareto_html(rows, wide, front, names, modes).replace(" ", "")
    assert '"type":"log"' not in pareto_html(rows, narrow, front, names, modes).replace(" ", "")
