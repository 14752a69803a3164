"""EvoMoE: DTS temperature schedule, dense-to-sparse decay, expert spawning, phases."""

import math

import pytest
import torch

from gatesearch.models import (
    DTSGateConfig,
    EvoMoEConfig,
    EvoMoENetwork,
    ExpertBank,
    MoENetworkConfig,
    RouteContext,
    build_gate,
    dts_temperature,
    spawn_experts,
)


@pytest.mark.parametrize("decay, t, expected", [
    ("exp", 0, 2.0), ("exp", 50, 2.0 * math.exp(50 * math.log(0.1 / 2.0) / 100)), ("exp", 100, 0.1),
    ("exp", 500, 0.1), ("linear", 0, 2.0), ("linear", 50, 1.05), ("linear", 100, 0.1), ("linear", 10**6, 0.1),
])
def test_dts_temperature_schedule(decay, t, expected):
    cfg = DTSGateConfig(tau_max=2.0, tau_min=0.1, decay=decay, decay_steps=100)
    assert dts_temperature(t, cfg) == pytest.approx(expected, rel=1e-9)


def test_dts_temperature_is_monotone_and_pure():
    cfg = DTSGateConfig(tau_max=1.5, tau_min=0.2, decay="exp", decay_steps=40)
    taus = [dts_temperature(t, cfg) for t in range(0, 80)]
    assert all(a >= b for a, b in zip(taus, taus[1:]))
    assert dts_temperature(7, cfg) == dts_temperature(7, cfg)  # no hidden state


def test_active_experts_decrease_as_tau_falls():
    torch.manual_seed(0)
    cfg = DTSGateConfig(tau_max=2.0, tau_min=0.05, decay="exp", decay_steps=100, threshold=0.02,
                        balance_weight=0.0)
    gate = build_gate(cfg, d_in=16, n_experts=8)
    gate.train()
    x = torch.randn(4096, 16)
    active = [gate(x, RouteContext(step=s)).mask.sum(1).float().mean().item() for s in (0, 25, 50, 75, 100)]
    assert all(a > b for a, b in zip(active, active[1:])), active
    assert active[0] > 6.0 and active[-1] < 2.0
    w = gate(x, RouteContext(step=0)).weights
    assert torch.allclose(w.sum(1), torch.ones(4096), atol=1e-5) and (w >= 0).all()


def test_switch_to_top1_and_eval_top1():
    gate = build_gate(DTSGateConfig(switch_step=10, tau_max=5.0, tau_min=1.0), d_in=8, n_experts=6)
    x = torch.randn(256, 8)
    gate.train()
    assert gate(x, RouteContext(step=9)).mask.sum(1).float().mean() > 1.5
    assert (gate(x, RouteContext(step=10)).mask.sum(1) == 1).all()
    gate.eval()
    r = gate(x, RouteContext(step=0))
    assert (r.mask.sum(1) == 1).all() and torch.allclose(r.weights.sum(1), torch.ones(256))


def test_balance_loss_is_minimal_for_uniform_routing():
    # top-1 routing (switch_step=0): all rows on one expert with weight ~1 gives n² · (1·1)/n = n;
    # uniform use gives n² · mean(me·ce) = E[max ĝ] < 1 (me_i = E[max ĝ]/n, ce_i = 1/n)
    gate = build_gate(DTSGateConfig(balance_weight=1.0, tau_max=1.0, tau_min=1.0, switch_step=0), d_in=4,
                      n_experts=4)
    gate.train()
    with torch.no_grad():
        gate.w_gate.weight.zero_()
    uniform = gate(torch.randn(8192, 4), RouteContext(step=0)).aux_losses["balance"].item()
    with torch.no_grad():
        gate.w_gate.weight[0].fill_(10.0)
    skewed = gate(torch.ones(8192, 4), RouteContext(step=0)).aux_losses["balance"].item()
    assert 0.3 < uniform < 1.0 and skewed == pytest.approx(4.0, abs=1e-3)


@pytest.mark.parametrize("method", ["mask", "noise"])
def test_spawned_experts_differ_and_keep_the_source(method):
    torch.manual_seed(0)
    bank = ExpertBank(5, 6, 16, 4)
    w0 = bank.w1.data[0].clone()
    spawn_experts(bank, EvoMoEConfig(diversify=method, mask_ratio=0.4, noise_std=0.2, seed=1))
    assert torch.equal(bank.w1.data[0], w0)
    for i in range(5):
        for j in range(i + 1, 5):
            assert not torch.allclose(bank.w1.data[i], bank.w1.data[j])
    if method == "mask":  # each spawned expert is the source with ~40 % zeroed
        zero = (bank.w1.data[1:] == 0).float().mean().item()
        assert 0.3 < zero < 0.5
        assert torch.equal(bank.w1.data[3][bank.w1.data[3] != 0], w0[bank.w1.data[3] != 0])


def test_copy_spawns_identical_experts():
    bank = ExpertBank(3, 4, 8, 2)
    spawn_experts(bank, EvoMoEConfig(diversify="copy"))
    assert torch.equal(bank.w2.data[0], bank.w2.data[2]) and torch.equal(bank.b1.data[1], bank.b1.data[0])


def test_evomoe_phases():
    cfg = MoENetworkConfig(gate=DTSGateConfig(decay_steps=10), n_experts=4, expert_hidden=8, expert_out=4)
    net = EvoMoENetwork(cfg, EvoMoEConfig(share_steps=3, diversify="mask"), d_in=6, n_outputs=[3])
    x = torch.randn(32, 6)
    net.train()
    net.advance(0)
    out = net(x, RouteContext(step=0))
    assert out.active_experts == 1.0 and int(net.phase) == 1
    assert out.macs_per_sample == net.moe.experts.macs_per_call() + net.tower_macs()  # one expert, no gate
    before = net.moe.experts.w1.data.clone()
    net.advance(3)
    assert int(net.phase) == 2
    assert not torch.equal(before[1], net.moe.experts.w1.data[1])  # spawned from expert 0
    out = net(x, RouteContext(step=3))
    assert out.active_experts > 1.0  # DTS starts dense (its schedule restarts at the spawn)
    state = net.state_dict()
    assert int(state["phase"]) == 2


def test_noise_spawn_of_a_one_element_parameter_stays_finite():
    """A width-1 bias has one element: its sample std is NaN (found by sampling the schema)."""
    from gatesearch.models import EvoMoEConfig, spawn_experts
    from gatesearch.models.experts import ExpertBank

    bank = ExpertBank(4, d_in=3, hidden=2, d_out=1)
    spawn_experts(bank, EvoMoEConfig(share_steps=1, diversify="noise", noise_std=0.5))
    assert all(torch.isfinite(p).all() for p in (bank.w1, bank.b1, bank.w2, bank.b2))


def test_switch_semantics_follow_the_released_code():
    """switch_step = -1: top-1 from the first update (released train.py); None: never."""
    x = torch.randn(256, 8)
    first = build_gate(DTSGateConfig(switch_step=-1, tau_max=5.0, tau_min=5.0), d_in=8, n_experts=6)
    never = build_gate(DTSGateConfig(switch_step=None, tau_max=5.0, tau_min=5.0), d_in=8, n_experts=6)
    first.train(), never.train()
    assert (first(x, RouteContext(step=0)).mask.sum(1) == 1).all()
    assert never(x, RouteContext(step=10**6)).mask.sum(1).float().mean() > 1.5


def test_switch_fraction_maps_onto_the_dts_phase():
    from gatesearch.models.knobs import from_flat

    def step(f):
        return from_flat(DTSGateConfig, {"switch_fraction": f}, total_steps=100).switch_step

    assert step(0.0) == -1 and step(1.0) is None and step(0.25) == 25


def test_default_dts_decays_to_about_one_expert():
    """The defaults (tau 2 -> 0.1 over D steps) go from all experts to under two at the end of
    the decay (about 1.8 at init weights), and exactly one from the switch on; the released
    temperatures (1.0 -> 0.5) without a switch stay around half the experts."""
    torch.manual_seed(0)
    gate = build_gate(DTSGateConfig(decay_steps=100, balance_weight=0.0), d_in=16, n_experts=16)
    gate.train()
    x = torch.randn(4096, 16)
    start = gate(x, RouteContext(step=0)).mask.sum(1).float().mean().item()
    end = gate(x, RouteContext(step=100)).mask.sum(1).float().mean().item()
    assert start > 8 and end < 2.0, (start, end)
    switched = build_gate(DTSGateConfig(decay_steps=100, switch_step=80, balance_weight=0.0), d_in=16, n_experts=16)
    switched.train()
    assert (switched(x, RouteContext(step=80)).mask.sum(1) == 1).all()
    released = build_gate(DTSGateConfig(tau_max=1.0, tau_min=0.5, decay_steps=100, balance_weight=0.0), d_in=16,
                          n_experts=16)
    released.train()
    assert released(x, RouteContext(step=100)).mask.sum(1).float().mean().item() > 4
