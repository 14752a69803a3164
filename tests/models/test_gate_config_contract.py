"""Gate configs say their derived values (``experts_per_row``: the k of run names and fronts; COMET's
depth), checked for every built-in and against the routing itself where it is hard; configs
without the method fall back to their ``k`` field, else ``n_experts``."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from gatesearch.models import (
    CometGateConfig,
    DSelectKGateConfig,
    DTSGateConfig,
    GateConfig,
    HashGateConfig,
    MoENetworkConfig,
    RouteContext,
    SoftmaxGateConfig,
    TopKGateConfig,
    build_gate,
    derived_values,
    experts_per_row,
    gate_configs,
)
from tests.gates import BUILTIN_GATES


@pytest.mark.parametrize("name", BUILTIN_GATES)
def test_every_builtin_config_implements_the_contract(name):
    assert isinstance(gate_configs()[name](), GateConfig)


@pytest.mark.parametrize(("config", "n", "expected"), [
    (TopKGateConfig(k=2), 8, 2),
    (TopKGateConfig(k=1), 8, 1),  # Switch
    (HashGateConfig(), 8, 1),
    (SoftmaxGateConfig(), 8, 8),
    (SoftmaxGateConfig(), 5, 5),
    (DTSGateConfig(), 16, 1),  # top-1 at evaluation
    (DSelectKGateConfig(k=3), 8, 3),
    (CometGateConfig(k=2), 8, 2),  # the paper's tree: one leaf per expert
    (CometGateConfig(k=2, tree_depth=4), 8, 2),  # 16 leaves over 8 experts: still one expert per tree
    (CometGateConfig(k=1, tree_depth=2), 8, 2),  # 4 leaves of 2 experts each
    (CometGateConfig(k=3, tree_depth=1), 8, 8),  # 2 leaves of 4 experts, 3 trees: capped at n
])
def test_experts_per_row_of_each_builtin(config, n, expected):
    assert config.experts_per_row(n) == experts_per_row(config, n) == expected


@pytest.mark.parametrize("config", [TopKGateConfig(k=5), DSelectKGateConfig(k=5), CometGateConfig(k=5)])
def test_k_larger_than_n_is_the_configs_error(config):
    with pytest.raises(ValueError, match="k=5 exceeds n_experts=4"):
        experts_per_row(config, 4)
    with pytest.raises(ValueError, match="k=5 exceeds n_experts=4"):
        MoENetworkConfig(gate=config, n_experts=4)


def test_comet_derives_its_tree_depth_and_the_others_nothing():
    assert derived_values(CometGateConfig(), 6) == {"tree_depth_effective": 3}
    assert derived_values(CometGateConfig(tree_depth=2), 6) == {"tree_depth_effective": 2}
    assert derived_values(TopKGateConfig(), 6) == {} and derived_values(HashGateConfig(), 6) == {}


@pytest.mark.parametrize("config", [TopKGateConfig(k=2), TopKGateConfig(k=1, noisy=False), HashGateConfig(),
                                    SoftmaxGateConfig(), DTSGateConfig()])
def test_evaluation_routing_uses_at_most_experts_per_row(config):
    """The gates that route hard at evaluation dispatch each row to exactly that many experts."""
    torch.manual_seed(0)
    gate = build_gate(config, d_in=6, n_experts=8, num_ids=100).eval()
    weights = gate(torch.randn(64, 6), RouteContext(token_ids=torch.arange(64))).weights
    assert ((weights > 0).sum(1) == experts_per_row(config, 8)).all()


@dataclass(frozen=True)
class WithK:
    k: int = 3


@dataclass(frozen=True)
class Plain:
    scale: float = 1.0


@dataclass(frozen=True)
class Derives:
    def derived(self, n_experts):
        return {"blocks": n_experts // 2}


def test_a_config_without_the_method_falls_back_to_k_then_to_dense():
    assert experts_per_row(WithK(), 8) == 3
    with pytest.raises(ValueError, match="k=3 exceeds n_experts=2"):
        experts_per_row(WithK(), 2)
    assert experts_per_row(Plain(), 8) == 8  # a gate that does not say is counted as dense
    assert derived_values(Plain(), 8) == {} and derived_values(Derives(), 8) == {"blocks": 4}
