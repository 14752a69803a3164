"""#23 item 3: the released EvoMoE behaviour as settings — evaluation (top probability, Gumbel noise,
capacity ceil(0.25 x tokens)) and the balance loss averaged over layers — beside our defaults."""

from __future__ import annotations

import math

import pytest
import torch

from gatesearch.models.gates.base import RouteContext
from gatesearch.models.gates.dts import DTSGate
from gatesearch.models.gates.dts_config import DTSGateConfig


def _gate(**knobs):
    torch.manual_seed(0)
    gate = DTSGate(DTSGateConfig(**knobs), d_in=8, n_experts=4)
    with torch.no_grad():  # a skewed router: most rows pick expert 0 (so a capacity limit bites)
        gate.w_gate.weight[0] += 3.0
    return gate.eval()


def test_our_evaluation_is_a_deterministic_top1_with_weight_one():
    gate, x = _gate(), torch.randn(64, 8)
    a, b = gate(x, RouteContext(step=10)), gate(x, RouteContext(step=10))
    assert torch.equal(a.weights, b.weights) and torch.allclose(a.weights.sum(1), torch.ones(64))
    assert a.dropped is None


def test_released_evaluation_weights_by_the_top_probability_and_caps_each_expert_at_a_quarter_of_the_tokens():
    gate, x = _gate(released_eval=True, use_gumbel_gates=False), torch.randn(64, 8)
    r = gate(x, RouteContext(step=10))
    probs = gate.w_gate(x).softmax(-1)
    kept = r.weights.sum(1) > 0
    assert torch.allclose(r.weights.sum(1)[kept], probs.max(1).values[kept])  # p_max, not 1
    assert int(r.mask.sum(0).max()) <= math.ceil(0.25 * 64)  # capacity ceil(0.25 x tokens)
    assert r.dropped is not None and int(r.dropped.sum()) > 0  # the skewed router overflows expert 0
    # tokens are dropped in order: the first ceil(0.25 x 64) tokens routed to expert 0 keep it
    routed0 = torch.nonzero(probs.argmax(1) == 0).flatten()
    assert bool(r.mask[routed0[:16], 0].all()) and not bool(r.mask[routed0[16:], 0].any())
    # deterministic without Gumbel gates, stochastic (noise at the current temperature) with them
    assert torch.equal(r.weights, gate(x, RouteContext(step=10)).weights)
    noisy = _gate(released_eval=True, use_gumbel_gates=True)
    assert not torch.equal(noisy(x, RouteContext(step=10)).weights, noisy(x, RouteContext(step=10)).weights)


@pytest.mark.parametrize("combine", ["sum", "average"])
def test_the_balance_loss_sums_or_averages_over_the_moe_layers(combine):
    from gatesearch.models.transformer import MoETransformerConfig, MoETransformerLM

    def aux(c):
        torch.manual_seed(0)
        model = MoETransformerLM(MoETransformerConfig(vocab=20, context=16, n_layers=3, d_head=8, n_experts=4,
                                                      gate=DTSGateConfig(), aux_combine=c))
        torch.manual_seed(1)
        return model(torch.randint(0, 20, (4, 16)), step=0).aux_loss

    assert float(aux(combine)) > 0
    if combine == "average":  # released gate_loss_combine_method="average": the sum over 3 layers / 3
        assert float(aux("average")) == pytest.approx(float(aux("sum")) / 3, rel=1e-6)


def test_the_released_settings_are_knobs_of_the_objectives():
    from gatesearch.objectives import get_objective

    lm = get_objective("moe_lm_shakespeare")
    full = lm.resolve({"gate": "dts", "dts_released_eval": True, "use_gumbel_gates": False, "balance_weight": 1.0,
                       "balance_combine": "average"})
    assert full["balance_combine"] == "average" and full["dts_released_eval"] is True
    with pytest.raises(ValueError, match="balance_combine"):
        lm.resolve({"balance_combine": "mean"})
    assert "dts_released_eval" in get_objective("evomoe_digits").schema.rules
