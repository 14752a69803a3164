"""A space file's `resources:` (Ray resources per configuration) is checked with the file: errors
name the line, the field and the fix; a good table or function gives each configuration its amounts."""

from __future__ import annotations

import textwrap

import pytest

from gatesearch.search.config.resources import from_space_file, requirements
from gatesearch.search.config.validate import validate_space_file
from gatesearch.spaces import SpaceError, parse_space_file

SPACE = """\
name: res
objective: moe_digits
search: {searcher: random, num_samples: 4, gpus_per_trial: 0.1}
RESOURCES
params:
  gate: {type: categorical, choices: [topk, hash]}
  n_experts: {type: int, low: 4, high: 16}
"""


def _sf(resources: str, tmp_path=None):
    path = str(tmp_path / "space.yaml") if tmp_path else "space.yaml"
    return parse_space_file(SPACE.replace("RESOURCES", textwrap.dedent(resources).strip()), path)


@pytest.mark.parametrize("resources, field, words", [
    ("resources: {by: n_expert, gpus_per_trial: {16: 1}}", "resources.by", ["not a searched parameter",
                                                                            "did you mean 'n_experts'"]),
    ("resources: {by: gate, gpus_per_trial: {topk: 1}}", "resources.gpus_per_trial", ["no row for gate = 'hash'"]),
    ("resources: {by: n_experts, gpus_per_trial: {8: 0.5}}", "resources.gpus_per_trial",
     ["n_experts can be 16 but the largest row is 8", "add a row 16"]),
    ("resources: {by: n_experts, gpus_per_trial: {16: -1}}", "resources.gpus_per_trial.16", ["not a valid amount"]),
    ("resources: {by: n_experts, cpus_per_trial: {16: 0}}", "resources.cpus_per_trial.16", ["not a valid amount"]),
    ("resources: {by: n_experts, gpu_per_trial: {16: 1}}", "resources.gpu_per_trial",
     ["did you mean 'gpus_per_trial'"]),
    ("resources: {by: n_experts}", "resources", ["no resources given"]),
    ("resources: nosuchmodule_xyz:fn", "resources", ["nosuchmodule_xyz"]),
    ("resources: 2", "resources", ["expected a table or module:function"]),
])
def test_bad_resources_name_line_field_and_fix(resources, field, words):
    with pytest.raises(SpaceError) as info:
        validate_space_file(_sf(resources))
    assert info.value.field == field and info.value.line == 4, str(info.value)
    for w in words:
        assert w in str(info.value), str(info.value)
    assert info.value.fix


def test_a_table_gives_each_configuration_its_row_and_search_gives_the_rest():
    sf = _sf("resources: {by: n_experts, gpus_per_trial: {8: 0.25, 16: 1}, cpus_per_trial: {16: 2}}")
    r = from_space_file(sf, 1.0, 0.1)
    assert r({"n_experts": 4}) == (2.0, 0.25) and r({"n_experts": 8}) == (2.0, 0.25)  # smallest key >= value
    assert r({"n_experts": 9}) == (2.0, 1.0) and r({"n_experts": 16}) == (2.0, 1.0)
    assert from_space_file(_sf("resources: {by: gate, gpus_per_trial: {topk: 1, hash: 0}}"), 1.0, 0.1)(
        {"gate": "hash"}) == (1.0, 0.0)
    assert set(requirements(r, sf)) == {(2.0, 0.25), (2.0, 1.0)}


def test_a_function_of_the_users_gets_the_configuration_and_the_fixed_values(tmp_path, monkeypatch):
    (tmp_path / "myres.py").write_text("def trial_resources(config):\n"
                                       "    return {'gpus_per_trial': 1.0 if config['n_experts'] > 8 else 0.5}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sf = _sf("resources: myres:trial_resources", tmp_path)
    validate_space_file(sf)
    r = from_space_file(sf, 1.0, 0.1)
    assert r({"n_experts": 4}) == (1.0, 0.5) and r({"n_experts": 12}) == (1.0, 1.0)
    assert set(requirements(r, sf)) == {(1.0, 0.5), (1.0, 1.0)}
    assert from_space_file(_sf(""), 1.0, 0.1) is None
