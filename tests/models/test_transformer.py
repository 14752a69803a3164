"""The MoE transformer LM: MACs equal the flop counter, sparse == dense, causality, gradients,
every m-th block is MoE, configuration errors."""

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from gatesearch.models import (
    CometGateConfig,
    DSelectKGateConfig,
    DTSGateConfig,
    EvoMoEConfig,
    HashGateConfig,
    LocalSearchConfig,
    TopKGateConfig,
)
from gatesearch.models.moe_ffn import MoEFeedForward
from gatesearch.models.transformer import MoETransformerConfig, MoETransformerLM

V = 40


def _lm(gate=None, **kw):
    torch.manual_seed(0)
    cfg = MoETransformerConfig(vocab=V, context=16, n_layers=kw.pop("n_layers", 3), n_heads=2, d_head=8,
                               gate=gate or TopKGateConfig(k=2), n_experts=kw.pop("n_experts", 4), attention="math",
                               **kw)
    return MoETransformerLM(cfg)


def _ids(B=3, T=16, seed=0):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("gate", [TopKGateConfig(k=1), TopKGateConfig(k=2), HashGateConfig(), CometGateConfig(k=2),
                                  CometGateConfig(k=1, tree_depth=1), DSelectKGateConfig(k=2), DTSGateConfig()],
                         ids=lambda g: type(g).__name__ + str(getattr(g, "k", "")))
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("moe_every", [1, 2])
def test_macs_per_token_equal_the_flop_counter(gate, training, moe_every):
    model = _lm(gate, moe_every=moe_every, capacity_factor=1.0 if training else None).train(training)
    ids = _ids(3, 12)
    counter = FlopCounterMode(display=False)
    with counter:
        out = model(ids, step=2)
    assert out.macs_per_token == pytest.approx(counter.get_total_flops() / 2 / ids.numel(), rel=1e-9)


def test_every_mth_block_is_moe():
    model = _lm(n_layers=6, moe_every=3)
    assert [b.is_moe for b in model.blocks] == [False, False, True, False, False, True]
    assert all(isinstance(f, MoEFeedForward) for f in model.moe_layers) and len(model.moe_layers) == 2


@pytest.mark.parametrize("gate", [TopKGateConfig(k=2, noisy=False), HashGateConfig(), CometGateConfig(k=2)],
                         ids=lambda g: type(g).__name__)
def test_sparse_equals_dense_and_attention_is_causal(gate):
    model = _lm(gate).eval()
    ids = _ids()
    sparse, dense = model(ids).logits, model(ids, dense=True).logits
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
    changed = ids.clone()
    changed[:, 10:] = (changed[:, 10:] + 1) % V  # the future changes ...
    torch.testing.assert_close(model(changed).logits[:, :10], sparse[:, :10])  # ... the past does not


def test_sdpa_and_math_attention_agree():
    model = _lm()
    ids = _ids()
    ref = model.eval()(ids).logits
    for block in model.blocks:
        block.attn.attention = "sdpa"
    torch.testing.assert_close(model(ids).logits, ref, atol=1e-5, rtol=1e-4)


def test_gradients_reach_every_parameter():
    model = _lm(TopKGateConfig(k=2), local_search=LocalSearchConfig(budget_steps=50)).train()
    ids = _ids(8, 16)
    out = model(ids[:, :-1], step=1)
    loss = F.cross_entropy(out.logits.reshape(-1, V), ids[:, 1:].reshape(-1)) + out.aux_loss
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing


def test_evomoe_blocks_share_then_spawn():
    model = _lm(DTSGateConfig(), evomoe=EvoMoEConfig(share_steps=3)).train()
    ids = _ids()
    model.advance(0)
    assert model(ids, step=0).active_experts == 1.0
    model.advance(3)
    assert all(int(f.phase) == 2 for f in model.moe_layers)
    assert model(ids, step=3).active_experts > 1.0


def test_configuration_errors_are_clear():
    with pytest.raises(ValueError, match="moe_every=3 > n_layers=2"):
        MoETransformerConfig(vocab=V, n_layers=2, moe_every=3)
    with pytest.raises(ValueError, match="exceeds the context 16"):
        _lm()(_ids(2, 17))
