"""The k of a trial's run name, front table and ``k_effective`` is what the chosen gate's config says
(:meth:`~gatesearch.models.gates.contract.GateConfig.experts_per_row`), for built-in gates and for a
user's: a top-1 gate without a ``k`` knob is labelled ``k1``, not the default ``k`` of another gate."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from gatesearch.models import Gate, RouteContext, Routing, register_gate, unregister_gate
from gatesearch.models.knobs import knob
from gatesearch.objectives import get_objective


@pytest.mark.parametrize(("gate", "label"), [("topk", "topk n6 k2"), ("hash", "hash n6 k1"),
                                             ("softmax", "softmax n6 k6"), ("dts", "dts n6 k1"),
                                             ("dselect_k", "dselect_k n6 k2"), ("comet", "comet n6 k2")])
def test_builtin_gates_label_their_own_k(gate, label):
    objective = get_objective("moe_digits")
    full = objective.resolve({"gate": gate, "n_experts": 6, "k": 2})
    assert objective.run_label(full) == label
    assert objective.summary(full)["k"] == objective.derived(full)["k_effective"] == int(label.rsplit("k", 1)[1])


def test_a_shallow_comet_tree_is_labelled_with_the_experts_it_runs():
    objective = get_objective("moe_digits")
    full = objective.resolve({"gate": "comet", "n_experts": 8, "k": 1, "tree_depth": 2})  # 4 leaves of 2 experts
    assert objective.derived(full) == {"k_effective": 2, "tree_depth_effective": 2}


def test_evomoe_trials_are_labelled_top1():
    objective = get_objective("evomoe_digits")
    assert objective.derived(objective.resolve({"n_experts": 4, "k": 2})) == {"k_effective": 1}


@dataclass(frozen=True)
class Top1Config:
    temperature: float = knob(1.0, "top1: logit temperature", flat="t1_temperature", low=0.1, high=10.0)

    def experts_per_row(self, n_experts: int) -> int:
        return 1


@dataclass(frozen=True)
class SaysNothingConfig:  # no experts_per_row, no k
    temperature: float = 1.0


class Top1(Gate):
    def __init__(self, config, *, d_in, n_experts, num_ids=None):
        super().__init__()
        self.config, self.n_experts, self.d_in = config, n_experts, d_in
        self.w = nn.Linear(d_in, n_experts, bias=False)

    def forward(self, x, ctx: RouteContext) -> Routing:
        p = (self.w(x) / self.config.temperature).softmax(-1)
        top, idx = p.max(-1, keepdim=True)
        weights = torch.zeros_like(p).scatter(1, idx, top) / top.detach()
        return Routing(weights=weights, gate_macs=self.macs_per_sample())

    def macs_per_sample(self) -> float:
        return float(self.d_in * self.n_experts)


class SaysNothing(Top1):
    pass


def test_a_users_top1_gate_is_labelled_k1_and_one_that_says_nothing_dense():
    register_gate("user_top1", Top1Config)(Top1)
    register_gate("user_says_nothing", SaysNothingConfig)(SaysNothing)
    try:
        objective = get_objective("moe_digits")
        full = objective.resolve({"gate": "user_top1", "n_experts": 6, "t1_temperature": 2.0})
        assert full["k"] == 2  # the default k of the built-in gates, which this gate does not read
        assert objective.run_label(full) == "user_top1 n6 k1"
        assert objective.summary(full)["k"] == 1 and objective.derived(full) == {"k_effective": 1}
        full = objective.resolve({"gate": "user_says_nothing", "n_experts": 6})
        assert objective.run_label(full) == "user_says_nothing n6 k6"  # the documented fallback
    finally:
        unregister_gate("user_top1")
        unregister_gate("user_says_nothing")
