"""Early-exit network: exit distribution (JEI-DNN Eq. 8), inference rule, exit-aware cost."""

import torch

from gatesearch.models import (
    EarlyExitConfig,
    EarlyExitNetwork,
    conditional_exit,
    exit_distribution,
    uncertainty_features,
)


def test_exit_probabilities_sum_to_one():
    torch.manual_seed(0)
    for g in (torch.rand(500, 5), torch.ones(10, 5), torch.zeros(10, 5), (torch.rand(500, 3) > 0.5).float()):
        p = exit_distribution(g)
        assert p.shape == (g.shape[0], g.shape[1] + 1)
        assert (p >= 0).all() and torch.allclose(p.sum(1), torch.ones(len(g)), atol=1e-6)
    # Eq. 8 by hand: g = (0.3, 0.9) -> P = (0.3, min(0.9, 0.7) = 0.7, 0)
    assert torch.allclose(exit_distribution(torch.tensor([[0.3, 0.9]])), torch.tensor([[0.3, 0.7, 0.0]]), atol=1e-6)


def test_conditional_exit_probabilities():
    q = conditional_exit(torch.tensor([[0.2, 0.4, 0.4]]))  # P_1 = .2 -> q_1 = .2; P_2/(1 - q_1) = .5
    assert torch.allclose(q, torch.tensor([[0.2, 0.5]]))


def test_raising_the_exit_threshold_never_lowers_expected_macs():
    torch.manual_seed(1)
    net = EarlyExitNetwork(EarlyExitConfig(n_blocks=5, hidden=16), d_in=10, n_classes=4)
    with torch.no_grad():
        for g in net.gates:
            g.bias.uniform_(-2, 2)
            g.weight.normal_(0, 3)
    out = net(torch.randn(2000, 10))
    costs = torch.tensor(net.exit_costs())
    previous_exits, previous_macs = None, -1.0
    for thr in torch.linspace(0.05, 1.0, 20).tolist():
        exits = net.exits(out, thr)
        macs = costs[exits].mean().item()
        assert macs >= previous_macs - 1e-9
        if previous_exits is not None:
            assert (exits >= previous_exits).all()  # per sample, too
        previous_exits, previous_macs = exits, macs
    assert previous_macs > costs[0].item()


def test_exit_costs_are_cumulative_and_match_the_layers():
    net = EarlyExitNetwork(EarlyExitConfig(n_blocks=3, hidden=8), d_in=5, n_classes=4)
    c = net.exit_costs()
    block1, head = 5 * 8 + 8, 2.5 * 8 + 8 * 4 + 4
    gate = 9 * 4 + 6
    assert c[0] == block1 + head + gate
    assert c[1] == c[0] + (8 * 8 + 8) + head + gate
    assert c[2] == c[1] + (8 * 8 + 8) + head  # no gate after the last exit
    plain = EarlyExitNetwork(EarlyExitConfig(n_blocks=3, hidden=8), d_in=5, n_classes=4, gated=False)
    assert plain.exit_costs()[2] == c[2] - 2 * gate


def test_gate_inputs_are_detached_uncertainty_statistics():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    u = uncertainty_features(logits)
    assert not u.requires_grad and u.shape == (2, 4)
    assert u[1, 0].item() == torch.tensor(1 / 3).item() and abs(u[1, 2].item()) < 1e-7  # uniform: margin 0
    assert u[0, 1] < u[1, 1]  # confident row has lower entropy
    net = EarlyExitNetwork(EarlyExitConfig(n_blocks=2, hidden=4), d_in=3, n_classes=3)
    out = net(torch.randn(4, 3))
    out.gate_logits.sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in net.im_parameters())
