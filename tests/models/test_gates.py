"""Gate contract (parametrized over the registry) and per-gate behaviour."""

import itertools

import numpy as np
import pytest
import torch

from gatesearch.models import (
    GATES,
    CometGateConfig,
    DSelectKGateConfig,
    DTSGateConfig,
    HashGateConfig,
    LocalSearchConfig,
    MoENetwork,
    MoENetworkConfig,
    PermutationLocalSearch,
    RouteContext,
    SoftmaxGateConfig,
    TopKGateConfig,
    build_gate,
    smooth_step,
)
from gatesearch.models.gates.comet import leaf_paths, tree_depth
from gatesearch.models.gates.hash import hash_table
from tests.gates import builtin_gates

#: every built-in gate with its default config (from the registry: a new gate is covered without a test
#: edit), some with settings the tests below rely on
CONFIGS = {
    **{name: config() for name, config in builtin_gates().items()},
    "softmax": SoftmaxGateConfig(),
    "topk": TopKGateConfig(k=2),
    "hash": HashGateConfig(kind="random"),
    "dselect_k": DSelectKGateConfig(k=2, gamma=1.0),
    "comet": CometGateConfig(k=2, gamma=1.0),
    "dts": DTSGateConfig(decay_steps=10),
}


def test_every_registered_gate_is_covered():
    assert set(CONFIGS) == set(GATES) and set(builtin_gates()) <= set(CONFIGS)


def _ctx(b, step=0):
    return RouteContext(step=step, token_ids=torch.arange(b) * 7)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("n", [8, 5, 2])
@pytest.mark.parametrize("local_search", [False, True])
@pytest.mark.parametrize("training", [False, True])
def test_weights_lie_on_the_simplex(name, n, local_search, training):
    torch.manual_seed(0)
    gate = build_gate(CONFIGS[name], d_in=12, n_experts=n, num_ids=1000)
    if local_search:
        gate = PermutationLocalSearch(gate, LocalSearchConfig(budget_steps=10))
    gate.train(training)
    x = torch.randn(64, 12) * 3
    r = gate(x, _ctx(64))
    assert r.weights.shape == (64, n)
    assert (r.weights >= 0).all()
    torch.testing.assert_close(r.weights.sum(1), torch.ones(64), atol=1e-5, rtol=0)
    assert torch.isfinite(r.aux_loss())


@pytest.mark.parametrize("cfg", [TopKGateConfig(k=1, noisy=False), TopKGateConfig(k=1, noisy=True),
                                 TopKGateConfig(k=2, noisy=True, w_importance=0.1, w_load=0.1),
                                 DSelectKGateConfig(k=2), DSelectKGateConfig(k=2, per_example=False),
                                 CometGateConfig(k=2), SoftmaxGateConfig()], ids=repr)
def test_gradients_reach_gate_parameters(cfg):
    torch.manual_seed(0)
    net = MoENetwork(MoENetworkConfig(gate=cfg, n_experts=6), d_in=10, n_outputs=[3])
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    out = net(x, _ctx(32))
    loss = torch.nn.functional.cross_entropy(out.logits[0], y) + out.aux_loss()
    loss.backward()
    gate = net.moe.gates[0]
    grads = [p.grad for p in gate.parameters()]
    assert grads and all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0, "no gradient reached the gate"


def test_topk_selects_exactly_k_and_losses_are_weighted():
    torch.manual_seed(0)
    gate = build_gate(TopKGateConfig(k=3, noisy=True, w_importance=0.5, w_load=0.25), d_in=8, n_experts=8)
    r = gate(torch.randn(100, 8), _ctx(100))
    assert ((r.weights > 0).sum(1) == 3).all()
    assert set(r.aux_losses) == {"importance", "load"}
    gate.eval()
    r = gate(torch.randn(100, 8), _ctx(100))
    assert "load" not in r.aux_losses  # the load loss needs the training noise


def test_topk_without_noise_rejects_load_loss():
    with pytest.raises(ValueError, match="load loss needs noisy"):
        TopKGateConfig(k=2, noisy=False, w_load=0.1)


def test_k_larger_than_n_is_rejected():
    with pytest.raises(ValueError, match="k=5 exceeds n_experts=4"):
        MoENetworkConfig(gate=TopKGateConfig(k=5), n_experts=4)


def test_smooth_step_boundaries_and_derivative():
    gamma = 0.8
    t = torch.tensor([-1.0, -gamma / 2, 0.0, gamma / 2, 1.0], requires_grad=True)
    s = smooth_step(t, gamma)
    torch.testing.assert_close(s.detach(), torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0]))
    (grad,) = torch.autograd.grad(s.sum(), t)
    assert grad[0] == 0 and grad[-1] == 0  # exactly flat outside the smooth region
    assert abs(grad[2] - 3 / (2 * gamma)) < 1e-6  # S'(0) = 3/(2γ)
    # C¹: the cubic's derivative -6t²/γ³ + 3/(2γ) vanishes at ±γ/2 (approached from inside)
    inside = torch.tensor([gamma / 2 - 1e-4, -gamma / 2 + 1e-4], requires_grad=True)
    (g_in,) = torch.autograd.grad(smooth_step(inside, gamma).sum(), inside)
    assert g_in.abs().max() < 1e-3


def test_comet_tree_paths_cover_every_leaf_once():
    for n in (2, 3, 5, 8, 9, 16):
        nodes, left = leaf_paths(n)
        assert nodes.shape == (n, tree_depth(n))
        assert tree_depth(n) == int(np.ceil(np.log2(n)))
        paths = {tuple(zip(nodes[i].tolist(), left[i].tolist())) for i in range(n)}
        assert len(paths) == n
        # hard routing: with every S in {0,1} exactly one leaf is reached per tree
        for bits in itertools.islice(itertools.product([0.0, 1.0], repeat=n - 1), 64):
            s = torch.tensor(list(bits) + [1.0])
            sp = s[nodes]
            mu = (left * sp + (1 - left) * (1 - sp)).prod(-1)
            assert mu.sum() == 1 and ((mu == 0) | (mu == 1)).all()


def test_comet_and_dselect_hard_routing_has_at_most_k_nonzeros():
    torch.manual_seed(0)
    for cfg in (CometGateConfig(k=2, gamma=0.01), DSelectKGateConfig(k=2, gamma=0.01)):
        gate = build_gate(cfg, d_in=6, n_experts=7)
        with torch.no_grad():  # blow the weights up: every smooth-step saturates
            for p in gate.parameters():
                p.mul_(1e4)
        w = gate(torch.randn(200, 6), _ctx(200)).weights
        assert ((w > 0).sum(1) <= 2).all()
        torch.testing.assert_close(w.sum(1), torch.ones(200), atol=1e-5, rtol=0)


def test_hash_is_deterministic_and_balanced():
    a = hash_table(1000, 8, "random", seed=3)
    b = hash_table(1000, 8, "random", seed=3)
    c = hash_table(1000, 8, "random", seed=4)
    assert (a == b).all() and (a != c).any()
    bal = hash_table(1000, 8, "balanced", seed=0)
    assert np.ptp(np.bincount(bal, minlength=8)) <= 1
    counts = np.random.default_rng(0).zipf(1.5, size=200).clip(max=500)
    tab = hash_table(200, 4, "balanced", seed=0, counts=counts)
    loads = np.bincount(tab, weights=counts, minlength=4)
    assert loads.max() - loads.min() <= counts.max()  # greedy LPT bound
    gate = build_gate(HashGateConfig(seed=3), d_in=4, n_experts=8, num_ids=1000)
    ids = torch.tensor([0, 5, 999, 1005])
    w = gate(torch.zeros(4, 4), RouteContext(token_ids=ids)).weights
    assert w.argmax(1).tolist() == [int(a[0]), int(a[5]), int(a[999]), int(a[5])]
    assert list(gate.parameters()) == []


def test_hash_without_ids_is_a_clear_error():
    gate = build_gate(HashGateConfig(), d_in=4, n_experts=4, num_ids=10)
    with pytest.raises(ValueError, match="token_ids"):
        gate(torch.zeros(2, 4), RouteContext())


def test_dselect_k_folding_doubles_the_initial_weight_of_the_first_experts():
    """Documented side effect (models/gates/dselect_k.py): n = 5, m = 3 -> experts 0-2 get
    2/8 of the initial mass, experts 3-4 get 1/8; a power-of-two n starts uniform."""
    for n, expected in ((5, [2 / 8] * 3 + [1 / 8] * 2), (8, [1 / 8] * 8)):
        gate = build_gate(DSelectKGateConfig(k=1, per_example=False), d_in=4, n_experts=n)
        with torch.no_grad():
            gate.z.zero_()  # S(0) = 1/2: the state the U(-γ/100, γ/100) init starts near
        w = gate(torch.randn(16, 4), RouteContext()).weights.mean(0)
        assert torch.allclose(w, torch.tensor(expected), atol=1e-6), (n, w)


@pytest.mark.parametrize("n", [3, 4, 6, 8])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_comet_tree_depth_maps_every_leaf_and_expert_and_bounds_the_active_experts(n, depth):
    from gatesearch.models.gates.comet import leaf_experts

    L = 2**depth
    pairs = leaf_experts(L, n)
    assert {leaf for leaf, _ in pairs} == set(range(L)) and {e for _, e in pairs} == set(range(n))
    assert len(pairs) == max(L, n)
    assert [e for _, e in sorted(pairs)] == sorted(e for _, e in pairs)  # contiguous blocks
    torch.manual_seed(0)
    gate = build_gate(CometGateConfig(k=2, gamma=0.01, tree_depth=depth), d_in=6, n_experts=n)
    assert gate.depth == depth and gate.path_nodes.shape == (L, depth)
    with torch.no_grad():  # every smooth-step saturates: each tree reaches one leaf
        for name, p in gate.named_parameters():
            if "nodes" in name:
                p.mul_(1e7)
    w = gate(torch.randn(300, 6), _ctx(300)).weights
    torch.testing.assert_close(w.sum(1), torch.ones(300), atol=1e-5, rtol=0)
    per_leaf = max(sum(1 for _, e in pairs if _ == leaf) for leaf in range(L))
    assert ((w > 0).sum(1) <= 2 * per_leaf).all()
    if L < n:  # a reached leaf runs all of its experts: more than k experts happen
        assert ((w > 0).sum(1) > 2).any()
    # MACs: k(L-1) hyperplanes + k·max(L, n) pair logits
    assert gate.macs_per_sample() == 6 * 2 * (L - 1 + max(L, n))


def test_comet_tree_depth_zero_is_the_papers_tree():
    torch.manual_seed(0)
    a = build_gate(CometGateConfig(k=2), d_in=5, n_experts=6)
    torch.manual_seed(0)
    b = build_gate(CometGateConfig(k=2, tree_depth=0), d_in=5, n_experts=6)
    assert a.depth == tree_depth(6) == 3 and a.n_leaves == 6
    x = torch.randn(20, 5)
    torch.testing.assert_close(a(x, _ctx(20)).weights, b(x, _ctx(20)).weights)
    with pytest.raises(ValueError, match="tree_depth must be in"):
        CometGateConfig(tree_depth=11)
