"""A space file is input from whoever wrote it: what would make its checks costly, escape the output
folder or break MLflow later is refused at its line, in our words (``SpaceError``)."""

from __future__ import annotations

import pytest

from gatesearch.spaces import SpaceError, load_space_file, parse_space_file
from gatesearch.spaces.space_file import MAX_BYTES, MAX_DEPTH, mlflow_key_problem

GOOD = "objective: moe_digits\nparams:\n  lr: {type: float, low: 0.001, high: 0.1}\n"


def _error(text: str) -> SpaceError:
    with pytest.raises(SpaceError) as e:
        parse_space_file(text, "s.yaml")
    return e.value


def test_anchors_and_aliases_are_refused_at_their_line():
    e = _error("objective: moe_digits\nfixed: &base {epochs: 1}\nparams: {}\n")
    assert (e.line, "anchor &base" in e.message) == (2, True)
    # the billion-laughs shape: refused at the first anchor, before anything expands
    lol = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) + GOOD
    e = _error(lol)
    assert e.line == 1 and "anchor &a" in e.message and "expand" in e.fix
    e = _error(GOOD + "fixed: {epochs: *nowhere}\n")  # an alias without its anchor is a YAML error here too
    assert e.line == 4


@pytest.mark.parametrize("text", [
    "objective: x\nparams: " + "[" * 5000 + "]" * 5000 + "\n",
    "objective: x\nparams: " + "{a: " * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1) + "\n",
])
def test_deep_nesting_is_a_space_error_not_a_crash(text):
    e = _error(text)
    assert e.line == 2 and f"more than {MAX_DEPTH} levels" in e.message


def test_a_file_over_the_size_cap_is_refused_before_it_is_parsed(tmp_path):
    big = GOOD + "# " + "x" * MAX_BYTES + "\n"
    assert "larger than 1,000,000 bytes" in _error(big).message
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(SpaceError, match="larger than"):
        load_space_file(path)


@pytest.mark.parametrize("name", ["../x", "/Users/me/exp", "a b", ".hidden", "x/y", "a" * 101, "-x"])
def test_a_name_that_is_not_a_plain_folder_name_is_refused_with_a_slug(name):
    e = _error(f"name: {name!r}\n" + GOOD)
    assert e.line == 1 and e.field == "name" and "names the search's folder" in e.message
    assert "e.g. name: " in e.fix


def test_good_names_and_the_file_stem_default():
    for name in ("digits-moe", "exp_1.v2", "A"):
        assert parse_space_file(f"name: {name}\n" + GOOD, "s.yaml").name == name
    assert parse_space_file(GOOD, "/x/my space (2).yaml").name == "my-space-2"


@pytest.mark.parametrize("key", ["lr", "a b", "x/y", "../x", "/abs", "a//b", "a/", "a/./b", ".", "k:1", "ü",
                                 "a$b", "x..y", "a/../b", "w[0]"])
def test_our_key_rule_is_mlflows(key):
    """Parameter names become MLflow param keys: the check at parse time agrees with MLflow's own."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.validation import _validate_param_name

    try:
        _validate_param_name(key)
        mlflow_ok = True
    except MlflowException:
        mlflow_ok = False
    assert (mlflow_key_problem(key) is None) == mlflow_ok


def test_a_parameter_or_fixed_name_mlflow_refuses_is_an_error_at_its_line():
    e = _error("objective: moe_digits\nparams:\n  lr: 0.1\n  w[0]: {type: int, low: 1, high: 2}\n")
    assert (e.line, e.field) == (4, "params.w[0]") and "('[]')" in e.message
    e = _error("objective: moe_digits\nfixed:\n  ../x: 1\nparams: {}\n")
    assert (e.line, e.field) == (3, "fixed.../x") and "path" in e.message
