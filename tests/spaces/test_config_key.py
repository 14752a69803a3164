"""config_key: the one identity deduplication, the searchers' repeat tracking and BoTorch's candidate share."""

import json

import numpy as np

from gatesearch.spaces import config_key


def test_equal_configurations_share_a_key_whatever_their_order():
    a = {"gate": "tree", "k": 2, "lr": 0.01}
    b = {"lr": 0.01, "k": 2, "gate": "tree"}
    assert config_key(a) == config_key(b)
    assert json.loads(config_key(a)) == a  # canonical JSON: it round-trips


def test_different_values_or_types_give_different_keys():
    base = {"gate": "tree", "k": 2}
    assert config_key(base) != config_key({"gate": "tree", "k": 3})
    assert config_key(base) != config_key({"gate": "tree", "k": 2, "depth": 1})
    assert config_key({"k": 2}) != config_key({"k": "2"})  # an int and its string are different values


def test_a_value_json_cannot_hold_is_keyed_by_its_str():
    key = config_key({"k": np.int64(4), "lr": np.float64(0.5)})
    assert json.loads(key) == {"k": "4", "lr": 0.5}
