"""MoE layer: sparse dispatch equals the dense reference; MACs equal the flop counter."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from gatesearch.models import (
    CometGateConfig,
    DSelectKGateConfig,
    HashGateConfig,
    LocalSearchConfig,
    MoENetwork,
    MoENetworkConfig,
    RouteContext,
    SoftmaxGateConfig,
    TopKGateConfig,
)

CFGS = [SoftmaxGateConfig(), TopKGateConfig(k=1), TopKGateConfig(k=3, noisy=False), HashGateConfig(),
        DSelectKGateConfig(k=2, gamma=0.5), CometGateConfig(k=2, gamma=0.5), CometGateConfig(k=2, gamma=0.5, tree_depth=1),
        CometGateConfig(k=1, gamma=0.5, tree_depth=4)]


def _net(cfg, n=8, tasks=(10,), ls=None):
    torch.manual_seed(0)
    return MoENetwork(MoENetworkConfig(gate=cfg, n_experts=n, expert_hidden=24, expert_out=12, local_search=ls,
                                       tower_hidden=8), d_in=16, n_outputs=list(tasks), num_ids=500)


def _saturate(net):
    """Push smooth-step gates into hard routing so the sparse path is really sparse."""
    with torch.no_grad():
        for g in net.moe.gates:
            for name, p in g.named_parameters():
                if "nodes" in name or "z_proj" in name:
                    p.mul_(300)


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("tasks", [(10,), (10, 3)])
@pytest.mark.parametrize("n", [8, 6])
def test_sparse_and_dense_paths_agree(cfg, tasks, n):
    net = _net(cfg, n=n, tasks=tasks).eval()
    _saturate(net)
    x = torch.randn(64, 16)
    ctx = RouteContext(step=0, token_ids=torch.arange(64))
    sparse, dense = net(x, ctx), net(x, ctx, dense=True)
    for a, b in zip(sparse.logits, dense.logits):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("ls", [None, LocalSearchConfig(budget_steps=10)])
def test_macs_equal_the_flop_counter(cfg, training, ls):
    net = _net(cfg, tasks=(10, 4), ls=ls).train(training)
    _saturate(net)
    x = torch.randn(50, 16)
    ctx = RouteContext(step=3, token_ids=torch.arange(50))
    counter = FlopCounterMode(display=False)
    with counter:
        out = net(x, ctx)
    # FlopCounterMode counts 2 flops per multiply-accumulate of every matmul.
    assert counter.get_total_flops() / 2 == pytest.approx(out.macs_per_sample * 50, rel=1e-9)


def test_sparse_dispatch_runs_only_selected_experts():
    net = _net(TopKGateConfig(k=2, noisy=False), n=16).eval()
    x = torch.randn(100, 16)
    out = net(x, RouteContext())
    assert out.active_experts == 2.0
    dense = net(x, RouteContext(), dense=True)
    assert dense.macs_per_sample > 7 * (out.macs_per_sample - net.tower_macs() - 16 * 16)


def test_multi_task_dispatch_counts_the_union_of_experts():
    net = _net(HashGateConfig(), n=8, tasks=(10, 3)).eval()
    out = net(torch.randn(40, 16), RouteContext(token_ids=torch.arange(40)))
    # both tasks hash the same id -> same expert: union = 1 expert per row
    assert out.active_experts == 1.0
    assert all((r.weights > 0).sum(1).eq(1).all() for r in out.routings)
    idx = out.routings[0].indices
    assert idx.shape == (40, 1) and (idx[:, 0] == out.routings[0].weights.argmax(1)).all()
