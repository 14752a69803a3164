"""The early-exit ViT: patches tile the padded image, costs match the flop counter, an exit per
block reads the CLS token, the JEI-DNN gates and exit rule are the shared ones."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gatesearch.models.vit import EarlyExitViT, ViTExitConfig


def _vit(patch=7, gated=True, side=28, **kw):
    torch.manual_seed(0)
    return EarlyExitViT(ViTExitConfig(patch=patch, **kw), image=(1, side, side), n_classes=10, gated=gated)


@pytest.mark.parametrize("patch", [7, 5, 28, 1])
def test_patches_tile_the_zero_padded_image(patch):
    net = _vit(patch=patch, side=14)
    x = torch.randn(2, 14 * 14)
    p = net.patches(x)
    g = -(-14 // patch)
    assert p.shape == (2, g * g, patch * patch) and net.n_patches == g * g
    img = torch.zeros(2, g * patch, g * patch)
    img[:, :14, :14] = x.view(2, 14, 14)
    back = p.view(2, g, g, patch, patch).permute(0, 1, 3, 2, 4).reshape(2, g * patch, g * patch)
    torch.testing.assert_close(back, img)


@pytest.mark.parametrize("patch", [7, 4, 5])
@pytest.mark.parametrize("gated", [False, True])
def test_matmul_macs_equal_the_flop_counter_and_costs_count_biases_and_norms(patch, gated):
    net = _vit(patch=patch, gated=gated, n_blocks=3).eval()
    x = torch.randn(4, 784)
    counter = FlopCounterMode(display=False)
    with counter:
        net(x)
    gates = 4 * (net.n_exits - 1) if gated else 0  # each gate is a Linear(4, 1) on the uncertainty features
    assert net.matmul_macs(net.n_exits - 1) + gates == pytest.approx(counter.get_total_flops() / 2 / 4)
    # the exit costs add, per token, every Linear's bias and 2.5·width per LayerNorm (the IMs' too)
    S = net.n_patches + 1
    biases = net.n_patches * net.embed.out_features + sum(
        S * m.out_features for b in net.blocks for m in b.modules() if isinstance(m, nn.Linear))
    norms = sum(S * 2.5 * m.normalized_shape[0] for b in net.blocks for m in b.modules() if isinstance(m, nn.LayerNorm))
    heads = sum(2.5 * im[0].normalized_shape[0] + im[1].out_features for im in net.ims)
    gate_costs = (9 * 10 + 6) * (net.n_exits - 1) if gated else 0
    expected = net.matmul_macs(net.n_exits - 1) + biases + norms + heads + gate_costs
    assert net.exit_costs()[-1] == pytest.approx(expected)
    assert net.exit_costs() == sorted(net.exit_costs())


def test_every_exit_reads_the_cls_token_and_gates_give_an_exit_distribution():
    net = _vit(n_blocks=4).eval()
    out = net(torch.randn(5, 784))
    assert len(out.logits) == 4 and all(lg.shape == (5, 10) for lg in out.logits)
    torch.testing.assert_close(out.exit_probs.sum(dim=1), torch.ones(5))
    exits = net.exits(out)
    assert exits.shape == (5,) and int(exits.max()) <= 3
    # the CLS token, not a mean over patches, feeds the IMs
    feats = list(net.block_outputs(torch.randn(3, 784)))
    assert len(feats) == 4 and feats[0].shape == (3, 32)


def test_gradients_reach_the_backbone_and_the_ims():
    net = _vit(gated=False).train()
    out = net(torch.randn(8, 784))
    sum(lg.logsumexp(dim=1).mean() for lg in out.logits).backward()
    params = net.backbone_parameters() + net.im_parameters()
    assert len({id(p) for p in params}) == len(list(net.parameters()))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
