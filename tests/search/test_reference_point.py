"""A hypervolume reference point the user sets (``search: {reference_point: {...}}``): checked
against the objective's metrics at its line, it fixes the box of the parent's hypervolume, the
printed result and MO-ASHA's tie-breaking from the first trial on (through ``resume``:
``tests/reliability/test_interrupt.py``, second chain)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.config.validate import validate_space_file
from gatesearch.search.front.pareto import hypervolume
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.schedulers.moasha import MOASHA
from gatesearch.spaces import SpaceError, parse_space_file

SPACE = """\
name: ref
objective: moe_digits
search: {searcher: random, num_samples: 3, max_concurrent: 1, seed: 2, front_every: 1,
         reference_point: REF}
fixed: {epochs: 1, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: [hash, softmax, topk]}
  n_experts: {type: int, low: 2, high: 6}
"""


def _space(ref: str):
    return parse_space_file(SPACE.replace("REF", ref), "space.yaml")


@pytest.mark.parametrize("ref, words", [
    ("{acuracy: 0.9, macs_per_sample: 3000}", ["acuracy is not an objective of moe_digits", "did you mean 'accuracy'"]),
    ("{accuracy: 0.9}", ["no value for macs_per_sample", "give a value for each of ['accuracy', 'macs_per_sample']"]),
    ("{accuracy: high, macs_per_sample: 3000}", ["accuracy must be a finite number", "'high'"]),
    ("{accuracy: .nan, macs_per_sample: 3000}", ["accuracy must be a finite number"]),
    ("[0.9, 3000]", ["expected a mapping objective -> value"]),
])
def test_a_bad_reference_point_is_an_error_at_its_line(ref, words):
    with pytest.raises(SpaceError) as info:
        validate_space_file(_space(ref))
    assert info.value.line in (3, 4) and "reference_point" in info.value.field, str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)


def test_moasha_prefers_a_vector_inside_the_box_at_the_same_rank():
    # two non-dominated vectors (accuracy max, MACs min); the second is outside the box (MACs above
    # the reference); by crowding alone they tie (both extremes: infinite distance)
    values = np.array([[0.80, 900.0], [0.95, 1500.0]])
    assert MOASHA(modes=["max", "min"], max_t=9).order(values).tolist() == [0, 1]
    assert MOASHA(modes=["max", "min"], max_t=9, reference=[0.5, 1000.0]).order(values).tolist() == [0, 1]
    assert MOASHA(modes=["max", "min"], max_t=9, reference=[0.5, 2000.0]).order(values[::-1]).tolist() == [0, 1]
    assert MOASHA(modes=["max", "min"], max_t=9, reference=[0.5, 1000.0]).order(values[::-1]).tolist() == [1, 0]
    # rank still comes first: a dominated vector inside the box goes after a front vector outside it
    dominated = np.array([[0.95, 1500.0], [0.70, 950.0], [0.96, 1400.0]])
    order = MOASHA(modes=["max", "min"], max_t=9, reference=[0.5, 1000.0]).order(dominated).tolist()
    assert order[-1] == 0


def test_the_search_uses_the_users_box_from_the_first_trial(ray_session, tmp_path):
    result = run_search(_space("{accuracy: 0.3, macs_per_sample: 50000}"), output_dir=tmp_path / "runs")
    assert result.reference_point == (0.3, 50000.0)
    values = np.array([[t["accuracy"], t["macs_per_sample"]] for t in result.trials])
    assert result.hypervolume == pytest.approx(hypervolume(values, ("max", "min"), [0.3, 50000.0]))
    client = MlflowClient(result.tracking_uri)
    params = client.get_run(result.parent_run_id).data.params
    assert json.loads(params["reference_point"]) == [0.3, 50000.0] and params["reference_point_source"] == "user"
    # the parent's hypervolume after each trial (front_every: 1), all in the user's box: the first
    # one is the first trial's own box volume, not 0 (an inferred reference starts at its nadir)
    history = client.get_metric_history(result.parent_run_id, "hypervolume")
    first = sorted(history, key=lambda m: m.step)[0]
    t0 = values[0]
    assert first.value == pytest.approx((t0[0] - 0.3) * (50000.0 - t0[1])) and first.value > 0
    assert sorted(history, key=lambda m: m.step)[-1].value == pytest.approx(result.hypervolume)
