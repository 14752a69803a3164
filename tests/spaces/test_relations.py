"""Relations between parameters (``k: {high: n_experts}``, ``relations: [...]``): read safely, checked
at their line, honoured by sampling; the searchers' side is in tests/search/test_searcher_contract.py."""

from __future__ import annotations

import pickle
import random

import pytest

from gatesearch.spaces import Int, Relation, RelationError, Space, SpaceError, parse_space_file

NAMES = {"k", "n_experts", "d_model", "n_heads", "gate"}


@pytest.mark.parametrize("text, values, holds", [
    ("k <= n_experts", {"k": 2, "n_experts": 2}, True),
    ("k <= n_experts", {"k": 3, "n_experts": 2}, False),
    ("d_model % n_heads == 0", {"d_model": 64, "n_heads": 8}, True),
    ("d_model % n_heads == 0", {"d_model": 60, "n_heads": 8}, False),
    ("2 * k <= n_experts and k >= 1", {"k": 2, "n_experts": 4}, True),
    ("gate == 'hash' or k <= 2", {"gate": "topk", "k": 3}, False),
    ("max(k, 2) < n_experts", {"k": 1, "n_experts": 3}, True),
    ("k <= n_experts", {"k": 3}, True),  # n_experts inactive: not checked
    ("d_model // n_heads >= 8", {"d_model": 64, "n_heads": 0}, False),  # 1/0 breaks it, never raises
])
def test_a_relation_holds_or_not(text, values, holds):
    assert Relation.parse(text, NAMES).holds(values) is holds


@pytest.mark.parametrize("text, words", [
    ("__import__('os').system('x') == 0", "not allowed"),
    ("k.real <= 1", "not allowed"),
    ("k <= nope", "'nope' is not a parameter"),
    ("k", "is not a comparison"),
    ("k <=", "not an expression"),
    ("(lambda: 1)() == 1", "not allowed"),
    ("3 < 4", "names no parameter"),
])
def test_anything_but_the_small_language_is_refused(text, words):
    with pytest.raises(RelationError, match=words):
        Relation.parse(text, NAMES)


def test_a_huge_power_is_a_broken_relation_not_a_hang():
    assert Relation.parse("k ** 10 ** 10 > 1", NAMES).holds({"k": 2}) is False


def test_bounds_follow_the_other_parameter_and_the_order_puts_it_first():
    sf = parse_space_file("""\
objective: moe_digits
fixed: {epochs: 1, cap: 6}
params:
  k: {type: int, low: 1, high: n_experts}
  n_experts: {type: int, low: 2, high: 8}
  w: {type: float, low: 0.5, high: cap}
relations: ["n_experts % 2 == 0"]
""", "s.yaml")
    space = sf.space
    assert [r.text for r in space.relations] == ["k <= n_experts", "n_experts % 2 == 0"]
    assert space.order.index("n_experts") < space.order.index("k")
    assert space.params["k"] == Int(1, 8) and space.params["w"].high == 6.0  # static: everything reachable
    assert space.range_of("k", {"n_experts": 4}) == (1, 4)
    draws = [space.sample(random.Random(i)) for i in range(300)]
    assert all(d["k"] <= d["n_experts"] and d["n_experts"] % 2 == 0 for d in draws)
    assert {d["k"] for d in draws} == set(range(1, 9))  # the whole range is reached
    assert pickle.loads(pickle.dumps(space)) == space


@pytest.mark.parametrize("body, line, field, words", [
    ("  k: {type: int, low: 1, high: n_expert}\n  n_experts: {type: int, low: 2, high: 8}\n", 4, "params.k.high",
     "did you mean 'n_experts'"),
    ("  k: {type: int, low: 1, high: k}\n", 4, "params.k.high", "names k itself"),
    ("  a: {type: int, low: 1, high: b}\n  b: {type: int, low: a, high: 8}\n", 5, "params.b.low", "in a circle"),
    ("  g: {type: categorical, choices: [x, y]}\n  k: {type: int, low: 1, high: g}\n", 5, "params.k.high",
     "int or float parameter only"),
    ("  k: {type: int, low: 1, high: 4}\nrelations: [\"k <= epochs\"]\n", 5, "relations.0", "epochs is fixed"),
    ("  k: {type: int, low: 1, high: 4}\nrelations: [\"k <== 2\"]\n", 5, "relations.0", "not an expression"),
    ("  k: {type: int, low: 1, high: 4}\nrelations: k <= 2\n", 5, "relations", "expected a list"),
])
def test_relation_mistakes_are_reported_at_their_line(body, line, field, words):
    with pytest.raises(SpaceError) as e:
        parse_space_file("objective: moe_digits\nfixed: {epochs: 1}\nparams:\n" + body, "s.yaml")
    assert (e.value.line, e.value.field) == (line, field) and words in str(e.value)


def test_relations_no_configuration_meets_are_refused_by_validation():
    from gatesearch.search.config.validate import validate_space_file

    sf = parse_space_file("""\
objective: moe_digits
fixed: {epochs: 1}
params:
  n_experts: {type: int, low: 2, high: 8}
  k: {type: int, low: 1, high: 2}
relations: ["k > n_experts"]
""", "s.yaml")
    with pytest.raises(SpaceError, match=r"s.yaml:6: relations: no configuration met the relations"):
        validate_space_file(sf)


def test_a_bound_that_follows_n_experts_satisfies_the_objectives_own_k_rule():
    """moe_digits needs k <= n_experts for every configuration: a fixed range that could break it is
    refused (as before), and the same range with the bound following n_experts is accepted."""
    from gatesearch.search.config.validate import validate_space_file

    text = "objective: moe_digits\nfixed: {epochs: 1}\nparams:\n  n_experts: {type: int, low: 2, high: 8}\n  k: {HIGH}\n"
    with pytest.raises(SpaceError, match=r"(?s)k <= n_experts must hold.*high: n_experts"):
        validate_space_file(parse_space_file(text.replace("{HIGH}", "{type: int, low: 1, high: 4}"), "s.yaml"))
    validate_space_file(parse_space_file(text.replace("{HIGH}", "{type: int, low: 1, high: n_experts}"), "s.yaml"))


def test_a_warm_start_skips_what_breaks_a_relation():
    from gatesearch.search.lifecycle.warm_start import configuration

    space = Space({"n_experts": Int(2, 8), "k": Int(1, 8)},
                  relations=(Relation.parse("k <= n_experts", {"k", "n_experts"}),))
    assert configuration(space, {}, {"n_experts": "4", "k": "2"}) == ({"n_experts": 4, "k": 2}, "")
    assert configuration(space, {}, {"n_experts": "2", "k": "4"}) == (None, "breaks k <= n_experts")
