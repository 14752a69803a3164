"""One home per gate knob: the MoE objectives' schema is built from the gate registry, so
every registered gate (a new one too) is searchable and trains through an objective."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from torch import nn

from gatesearch.models import GATES, Gate, RouteContext, Routing, gate_names, register_gate, unregister_gate
from gatesearch.models.knobs import knob, knobs
from gatesearch.objectives import get_objective
from gatesearch.objectives.moe_classification import MoEClassification, gate_config


def _tiny(objective):
    data = objective.data(0)
    cut = lambda s: replace(s, x=s.x[:48], y=s.y[:48], ids=s.ids[:48])  # noqa: E731
    objective._cache = {0: replace(data, train=cut(data.train), val=cut(data.val), test=cut(data.test))}
    return objective


@pytest.mark.parametrize("gate", gate_names())
def test_every_registered_gate_trains_through_the_objective(gate):
    objective = get_objective("moe_digits")
    schema = objective.schema
    for key, (_, k) in knobs(GATES[gate].config_type).items():  # each knob has its one rule
        assert key in schema.rules and schema.rules[key].kind == k.kind
    full = objective.resolve({"gate": gate, "epochs": 1, "n_experts": 4, "k": 2})
    assert type(gate_config(full)) is GATES[gate].config_type
    out = _tiny(MoEClassification("tmp_digits", objective._load)).run(full)
    assert np.isfinite(out["accuracy"]) and out["macs_per_sample"] > 0


@dataclass(frozen=True)
class ScaledTop1Config:
    scale: float = knob(1.0, "scaled_top1: logit scale", flat="st1_scale", low=0.1, high=10.0)


class ScaledTop1(Gate):
    def __init__(self, config, *, d_in, n_experts, num_ids=None):
        super().__init__()
        self.config, self.n_experts, self.d_in = config, n_experts, d_in
        self.w = nn.Linear(d_in, n_experts, bias=False)

    def forward(self, x, ctx: RouteContext) -> Routing:
        p = (self.config.scale * self.w(x)).softmax(-1)
        top, idx = p.max(-1, keepdim=True)
        return Routing(weights=torch.zeros_like(p).scatter(1, idx, top) / top.detach(), gate_macs=self.macs_per_sample())

    def macs_per_sample(self) -> float:
        return float(self.d_in * self.n_experts)


def test_a_newly_registered_gate_is_searchable_with_its_knobs():
    register_gate("scaled_top1", ScaledTop1Config)(ScaledTop1)
    try:
        objective = get_objective("moe_digits")
        assert "scaled_top1" in objective.schema.rules["gate"].choices
        assert objective.schema.rules["st1_scale"].high == 10.0 and objective.defaults["st1_scale"] == 1.0
        full = objective.resolve({"gate": "scaled_top1", "st1_scale": 3.0, "epochs": 1, "n_experts": 4})
        assert gate_config(full) == ScaledTop1Config(scale=3.0)
        assert "st1_scale" in objective.active(full) and "tau_max" not in objective.active(full)
        with pytest.raises(ValueError, match="st1_scale"):
            objective.resolve({"gate": "scaled_top1", "st1_scale": 30.0})
        out = _tiny(MoEClassification("tmp_digits2", objective._load)).run(full)
        assert np.isfinite(out["accuracy"])
    finally:
        unregister_gate("scaled_top1")
    assert "scaled_top1" not in GATES
    assert "st1_scale" not in get_objective("moe_digits").schema.rules


def test_a_trial_logs_only_its_active_parameters():
    objective = get_objective("moe_digits")
    hash_trial = objective.active(objective.resolve({"gate": "hash"}))
    assert "hash_kind" in hash_trial and not any(k.startswith(("tau_", "ls_")) for k in hash_trial)
    assert "use_gumbel_gates" not in hash_trial and "gamma" not in hash_trial
    comet_ls = objective.active(objective.resolve({"gate": "comet", "local_search": True}))
    assert {"gamma", "ls_budget_epochs", "ls_sinkhorn_iters_start"} <= set(comet_ls)
    topk = objective.active(objective.resolve({"gate": "topk", "noisy": False}))
    assert "w_load" not in topk and "w_importance" in topk  # the load loss needs the noise
    evo = get_objective("evomoe_digits")
    assert "noise_std" not in evo.active(evo.resolve({"diversify": "mask"}))
    assert "noise_std" in evo.active(evo.resolve({"diversify": "noise"}))
