"""#23 item 1: the DTS temperature reaches its floor no later than the switch to top-1, in every
default configuration and every configuration of the example spaces that select ``gate: dts``
(the decay, not the abrupt switch, sparsifies)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gatesearch.models.gates.dts import decay_length, dts_temperature
from gatesearch.models.gates.dts_config import DTSGateConfig
from gatesearch.objectives import get_objective
from gatesearch.objectives.moe_classification import gate_config
from gatesearch.spaces import load_space_file

EXAMPLES = Path(__file__).resolve().parents[2] / "spaces" / "examples"
#: training rows per data set (digits: 1,797 images less 20 % test and 15 % validation; the character
#: LM: 90 % of its 30,000 windows; MovieLens: the decay bound does not depend on it, any size will do)
N_TRAIN = {"digits": 1797 - round(1797 * 0.2) - round(1797 * 0.15), "charlm": 27000, "movielens": 100000}


def _dts(objective_name: str, config: dict) -> tuple[DTSGateConfig, int]:
    """The DTS gate config a trial of ``config`` trains with, and its DTS phase in steps."""
    objective = get_objective(objective_name)
    full = objective.resolve(config)
    if hasattr(objective, "train_config"):  # the LM objectives: steps per epoch is a knob
        tc = objective.train_config(full)
        spe, phase = tc.steps_per_epoch, objective.gate_phase_steps(full, tc)
    else:
        from gatesearch.objectives.trainer import TrainConfig

        tc = TrainConfig(epochs=full["epochs"], lr=full["lr"], batch_size=full["batch_size"],
                         weight_decay=full["weight_decay"], seed=full["seed"])
        n_train = next((n for k, n in N_TRAIN.items() if k in objective_name), N_TRAIN["digits"])
        spe = tc.steps_per_epoch(n_train)
        phase = objective.gate_phase_steps(full, tc, n_train)
    return gate_config(full, spe, total_steps=phase), phase


def _assert_floor_at_switch(cfg: DTSGateConfig, where: str) -> None:
    if cfg.switch_step is None or cfg.switch_step <= 0:
        return
    assert dts_temperature(cfg.switch_step, cfg) == pytest.approx(cfg.tau_min), where
    assert decay_length(cfg) <= cfg.switch_step, where


@pytest.mark.parametrize("objective, config", [
    ("evomoe_lm_shakespeare", {}), ("moe_lm_shakespeare", {"gate": "dts"}),
    ("evomoe_digits", {}), ("moe_digits", {"gate": "dts"}),
])
def test_the_default_decay_ends_at_the_switch_at_the_latest(objective, config):
    cfg, phase = _dts(objective, config)
    assert 0 < cfg.switch_step < phase
    _assert_floor_at_switch(cfg, objective)
    # before the bound: evomoe_lm_shakespeare switched at tau 0.33 (decay of 1,000 steps, switch at 600)
    if objective == "evomoe_lm_shakespeare":
        assert (cfg.decay_steps, cfg.switch_step) == (1000, 600)
        unbounded = DTSGateConfig(tau_max=cfg.tau_max, tau_min=cfg.tau_min, decay_steps=cfg.decay_steps)
        assert dts_temperature(600, unbounded) == pytest.approx(0.331, abs=1e-3)


@pytest.mark.parametrize("space", sorted(p.name for p in EXAMPLES.glob("*.yaml")
                                         if "dts" in p.read_text() or "evomoe" in p.name))
def test_every_configuration_of_the_example_spaces_reaches_the_floor_by_the_switch(space):
    sf = load_space_file(EXAMPLES / space)
    rng, checked = random.Random(0), 0
    for _ in range(200):
        config = {**sf.fixed, **sf.space.sample(rng)}
        if get_objective(sf.objective).resolve(config)["gate"] != "dts":
            continue
        cfg, _ = _dts(sf.objective, config)
        _assert_floor_at_switch(cfg, f"{space}: {config}")
        checked += 1
    assert checked > 0, f"{space}: no configuration with gate dts"


def test_a_switch_from_the_first_update_or_none_leaves_the_decay_as_set():
    assert decay_length(DTSGateConfig(decay_steps=500, switch_step=-1)) == 500
    assert decay_length(DTSGateConfig(decay_steps=500, switch_step=None)) == 500
    assert decay_length(DTSGateConfig(decay_steps=500, switch_step=800)) == 500
    assert decay_length(DTSGateConfig(decay_steps=500, switch_step=200)) == 200


@pytest.mark.parametrize("step", [10, 200])  # the soft phase, then the top-1 phase (switch at 100)
@pytest.mark.parametrize("gumbel_gates", [True, False])
def test_the_router_gets_the_released_gradient_in_both_phases(step, gumbel_gates):
    """#23 item 2: the released gate combines with g = m ⊙ ĝ unnormalised; ours puts rows on the
    simplex straight-through, so for the same upstream gradient (and the same Gumbel noise) W_g's
    gradient is the released one, before and after the switch."""
    import torch
    import torch.nn.functional as F

    from gatesearch.models.gates.base import RouteContext
    from gatesearch.models.gates.dts import DTSGate

    cfg = DTSGateConfig(tau_max=1.0, tau_min=0.2, decay_steps=300, switch_step=100, balance_weight=0.0,
                        use_gumbel_gates=gumbel_gates)
    torch.manual_seed(0)
    gate, x, upstream = DTSGate(cfg, d_in=16, n_experts=8), torch.randn(64, 16), torch.randn(64, 8)
    torch.manual_seed(1)
    routing = gate(x, RouteContext(step=step))
    assert torch.allclose(routing.weights.sum(dim=1), torch.ones(64), atol=1e-6)  # our contract
    (routing.weights * upstream).sum().backward()
    ours = gate.w_gate.weight.grad.clone()
    gate.zero_grad()
    torch.manual_seed(1)  # the same Gumbel noise: the released computation (topkgate.py)
    h = gate.w_gate(x)
    g_hat = F.gumbel_softmax(h, tau=dts_temperature(step, cfg), hard=False)
    if step >= cfg.switch_step:
        mask = F.one_hot(g_hat.argmax(dim=-1), 8).to(g_hat.dtype)
    else:
        mask = torch.maximum((g_hat > cfg.threshold).to(g_hat.dtype), F.one_hot(g_hat.argmax(dim=-1), 8).to(g_hat.dtype))
    released = mask * (g_hat if gumbel_gates else h.softmax(dim=-1))
    (released * upstream).sum().backward()
    assert torch.allclose(ours, gate.w_gate.weight.grad, atol=1e-6)
    assert not torch.allclose(routing.weights, released)  # the values differ (by Σg), as documented
