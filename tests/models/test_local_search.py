"""Permutation local search: schedules, Sinkhorn, Hungarian, hardening, state dict."""

import itertools

import pytest
import torch

from gatesearch.models import LocalSearchConfig, PermutationLocalSearch, RouteContext, TopKGateConfig, build_gate
from gatesearch.models.gates.local_search import hungarian, sinkhorn, sinkhorn_iterations, temperature


def test_schedules_follow_the_paper_endpoints():
    cfg = LocalSearchConfig(budget_steps=100)
    assert temperature(0, cfg) == pytest.approx(1e-3)
    assert temperature(50, cfg) == pytest.approx(1e-5)  # log-linear midpoint
    assert temperature(100, cfg) == pytest.approx(1e-7)
    assert temperature(1000, cfg) == pytest.approx(1e-7)
    assert sinkhorn_iterations(0, cfg) == 20 and sinkhorn_iterations(100, cfg) == 150
    assert sinkhorn_iterations(50, cfg) == 85


def test_sinkhorn_is_doubly_stochastic():
    torch.manual_seed(0)
    p = sinkhorn(torch.randn(7, 7) * 3, 200)
    torch.testing.assert_close(p.sum(0), torch.ones(7), atol=1e-4, rtol=0)
    torch.testing.assert_close(p.sum(1), torch.ones(7), atol=1e-4, rtol=0)
    assert (p >= 0).all()


def test_hungarian_returns_the_best_permutation():
    torch.manual_seed(1)
    p = torch.rand(5, 5)
    perm = hungarian(p)
    assert sorted(perm.tolist()) == list(range(5))
    best = max(itertools.permutations(range(5)), key=lambda s: sum(p[i, s[i]] for i in range(5)))
    assert perm.tolist() == list(best)


def test_hardening_freezes_a_permutation_saved_in_the_state_dict():
    torch.manual_seed(0)
    mk = lambda: PermutationLocalSearch(build_gate(TopKGateConfig(k=2, noisy=False), d_in=6, n_experts=6),
                                        LocalSearchConfig(budget_steps=5))
    gate = mk()
    with torch.no_grad():
        gate.logits.copy_(torch.eye(6)[[3, 1, 0, 5, 2, 4]] * 5)
    gate.advance(4)
    assert not bool(gate.hardened)
    gate.advance(5)
    assert bool(gate.hardened) and not gate.logits.requires_grad
    assert gate.perm.tolist() == [3, 1, 0, 5, 2, 4]
    clone = mk()
    clone.load_state_dict(gate.state_dict())
    assert bool(clone.hardened) and clone.perm.tolist() == gate.perm.tolist()
    clone.eval()
    x = torch.randn(10, 6)
    inner = clone.gate(x, RouteContext()).weights
    outer = clone(x, RouteContext()).weights
    torch.testing.assert_close(outer[:, clone.perm], inner)  # g'[perm[i]] = g[i]


def test_training_uses_the_soft_matrix_and_adds_the_entropy_term():
    torch.manual_seed(0)
    gate = PermutationLocalSearch(build_gate(TopKGateConfig(k=1, noisy=False), d_in=4, n_experts=4),
                                  LocalSearchConfig(budget_steps=100, tau_start=1.0, tau_end=0.1))
    r = gate(torch.randn(8, 4), RouteContext(step=0))
    assert "permutation_entropy" in r.aux_losses
    assert (r.weights > 0).sum(1).min() > 1  # soft P spreads the top-1 weight
    ((r.weights * torch.arange(4.0)).sum() + r.aux_losses["permutation_entropy"]).backward()
    assert gate.logits.grad is not None and gate.logits.grad.abs().sum() > 0
