"""``plugins:`` in a space file: a list of dotted module names (parsed here, imported by ``search``);
anything else is an error at its line with the fix."""

from __future__ import annotations

import pytest

from gatesearch.spaces import SpaceError, parse_space_file

HEAD = "name: p\nobjective: moe_digits\n"
PARAMS = "params:\n  gate: {type: categorical, choices: [topk, hash]}\n"


def _error(text: str) -> SpaceError:
    with pytest.raises(SpaceError) as info:
        parse_space_file(text, "/abs/space.yaml")
    return info.value


def test_plugins_are_module_names_in_order_default_none():
    assert parse_space_file(HEAD + PARAMS).plugins == ()
    sf = parse_space_file(HEAD + "plugins: [mygates, mypkg.gates, mygates]\n" + PARAMS)
    assert sf.plugins == ("mygates", "mypkg.gates")  # a repeat is imported once
    block = parse_space_file(HEAD + "plugins:\n  - mygates\n  - other_gates\n" + PARAMS)
    assert block.plugins == ("mygates", "other_gates")


def test_a_single_name_is_not_a_list():
    e = _error(HEAD + "plugins: mygates\n" + PARAMS)
    assert (e.line, e.field) == (3, "plugins") and "expected a list of module names" in e.message
    assert e.fix == "write plugins: [mygates]"


@pytest.mark.parametrize("bad", ["my-gates", "mypkg/gates", "mypkg.gates:MyGate", "1", ""])
def test_an_entry_that_is_not_a_module_name_is_named_at_its_line(bad):
    e = _error(HEAD + f"plugins:\n  - ok_gates\n  - '{bad}'\n" + PARAMS)
    assert (e.file, e.line, e.field) == ("/abs/space.yaml", 5, "plugins.1"), e
    assert "is not a module name" in e.message and "e.g. mygates or mypkg.gates" in e.fix
    assert str(e).startswith("/abs/space.yaml:5: plugins.1: ")


def test_a_file_name_is_answered_with_its_module_name():
    e = _error(HEAD + "plugins: [mygates.py]\n" + PARAMS)
    assert (e.line, e.field) == (3, "plugins.0") and "is a file name, not a module name" in e.message
    assert e.fix.startswith("write mygates (the name you would import")


def test_a_misspelt_key_suggests_plugins():
    e = _error(HEAD + "plugin: [mygates]\n" + PARAMS)
    assert e.line == 3 and "did you mean 'plugins'" in e.message
