"""The token-level MoE FFN in a toy transformer: sparse == dense, MACs == the flop counter,
gradients reach every parameter, capacity drops are counted, hash routes by token id,
EvoMoE's phase 1 and spawn, and the README's drop-in example runs."""

import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gatesearch.models import (
    CometGateConfig,
    DSelectKGateConfig,
    DTSGateConfig,
    EvoMoEConfig,
    HashGateConfig,
    LocalSearchConfig,
    MoEFeedForward,
    Routing,
    TopKGateConfig,
    apply_capacity,
    expert_capacity,
)
from gatesearch.models.gates import gate_names
from gatesearch.models.gates.registry import gate_configs
from tests.gates import builtin_gates

ROOT = Path(__file__).resolve().parents[2]
VOCAB, D = 50, 16
#: every built-in gate with its default config (from the registry: a new gate is covered without a
#: test edit), some with settings that suit the toy model, and two variants of top-k
GATES = {**{name: config() for name, config in builtin_gates().items()},
         "topk": TopKGateConfig(k=2), "switch": TopKGateConfig(k=1), "topk_plain": TopKGateConfig(k=2, noisy=False),
         "dselect_k": DSelectKGateConfig(k=2, gamma=0.5), "comet": CometGateConfig(k=2, gamma=0.5)}
#: hash routing has no parameters of its own (it routes by token id); topk_plain is topk without noise
GRADIENT_CASES = [name for name in GATES if name not in ("hash", "topk_plain")]


def test_every_registered_gate_has_a_case():
    assert {type(c) for c in GATES.values()} == set(gate_configs().values()), gate_names()


class Block(nn.Module):
    """Pre-LN transformer block (causal self-attention + MoE FFN)."""

    def __init__(self, ffn: MoEFeedForward):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.attn = nn.MultiheadAttention(D, 2, batch_first=True)
        self.ffn = ffn

    def forward(self, h, ids, step=0, dense=False):
        T = h.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        a = self.ln1(h)
        h = h + self.attn(a, a, a, attn_mask=causal, need_weights=False)[0]
        out = self.ffn(self.ln2(h), step=step, token_ids=ids, dense=dense)
        return h + out.output, out


class ToyLM(nn.Module):
    def __init__(self, cfg, n=6, **kw):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, D)
        self.block = Block(MoEFeedForward(D, 24, n, cfg, num_ids=VOCAB, **kw))
        self.head = nn.Linear(D, VOCAB)

    def forward(self, ids, step=0, dense=False):
        h, out = self.block(self.emb(ids), ids, step, dense)
        return self.head(h), out


def _saturate(model):
    """Push smooth-step gates into hard routing so the sparse path is really sparse."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "nodes" in name or "z_proj" in name:
                p.mul_(300)


def _ids(B=4, T=12, seed=0):
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(GATES))
@pytest.mark.parametrize("training", [False, True])
def test_sparse_equals_dense_reference(name, training):
    torch.manual_seed(0)
    model = ToyLM(GATES[name]).train(training)
    _saturate(model)
    ids = _ids()
    torch.manual_seed(1)  # same noise (noisy top-k, Gumbel) in both calls
    sparse, s_out = model(ids, step=3)
    torch.manual_seed(1)
    dense, d_out = model(ids, step=3, dense=True)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s_out.routing.weights, d_out.routing.weights)
    if name in ("switch", "topk", "topk_plain", "hash"):  # really sparse: k (or 1) experts per token
        assert s_out.active_experts == pytest.approx(getattr(GATES[name], "k", 1))


@pytest.mark.parametrize("name", list(GATES))
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("ls", [None, LocalSearchConfig(budget_steps=10)], ids=["plain", "local_search"])
def test_macs_per_token_equal_the_flop_counter(name, training, ls):
    torch.manual_seed(0)
    ffn = MoEFeedForward(D, 24, 6, GATES[name], local_search=ls, num_ids=VOCAB).train(training)
    _saturate(ffn)
    x, ids = torch.randn(3, 10, D), _ids(3, 10)
    counter = FlopCounterMode(display=False)
    with counter:
        out = ffn(x, step=2, token_ids=ids)
    # FlopCounterMode counts 2 flops per multiply-accumulate of every matmul.
    assert out.macs_per_token == pytest.approx(counter.get_total_flops() / 2 / 30, rel=1e-9)


@pytest.mark.parametrize("name", GRADIENT_CASES)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    model = ToyLM(GATES[name], n=4, local_search=LocalSearchConfig(budget_steps=100)).train()
    ids = _ids(8, 16)
    logits, out = model(ids, step=1)
    loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids.reshape(-1)) + out.aux_loss()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    assert not missing, f"no gradient reached {missing}"


def test_capacity_drops_the_overflow_in_priority_order():
    # 8 tokens, 4 experts, top-1: everyone wants expert 0 -> C = ceil(1.0 * 8 / 4) = 2: tokens 0, 1 keep it
    w = torch.zeros(8, 4)
    w[:, 0] = 1.0
    r = apply_capacity(Routing(weights=w), 1.0)
    assert expert_capacity(8, 4, 1.0) == 2
    assert r.weights[:, 0].tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert r.dropped[:, 0].tolist() == [False, False] + [True] * 6
    assert r.dropped_fraction == pytest.approx(6 / 8) and r.rows_dropped_fraction == pytest.approx(6 / 8)
    assert r.load.tolist() == [0.25, 0.0, 0.0, 0.0]


def test_capacity_serves_first_choices_before_second_choices():
    # top-2 over 3 experts, 4 tokens: P = 8, C = ceil(0.75 * 8 / 3) = 2.
    w = torch.tensor([[0.6, 0.4, 0.0],   # first choice 0, second 1
                      [0.0, 0.7, 0.3],   # first 1, second 2
                      [0.3, 0.7, 0.0],   # first 1, second 0
                      [0.2, 0.0, 0.8]])  # first 2, second 0
    r = apply_capacity(Routing(weights=w), 0.75)
    # expert 0: first choice of token 0, then second choices of tokens 2, 3 -> keeps tokens 0 and 2
    # expert 1: first choices of tokens 1, 2 (kept), second choice of token 0 dropped
    # expert 2: first choice of token 3, second choice of token 1 -> both kept
    kept = (r.weights != 0).int().tolist()
    assert kept == [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]]
    assert r.dropped.sum().item() == 2 and r.dropped[0, 1] and r.dropped[3, 0]
    assert r.weights[0, 0].item() == pytest.approx(0.6)  # not renormalised
    assert r.rows_dropped_fraction == 0.0


@pytest.mark.parametrize("cf", [0.25, 0.5, 1.0, 1.25, 2.0])
def test_capacity_invariants_in_the_layer(cf):
    torch.manual_seed(0)
    ffn = MoEFeedForward(D, 24, 4, TopKGateConfig(k=2, noisy=False), capacity_factor=cf).eval()
    x = torch.randn(4, 16, D)
    out = ffn(x)
    free = MoEFeedForward(D, 24, 4, TopKGateConfig(k=2, noisy=False)).eval()
    free.load_state_dict(ffn.state_dict())
    ref = free(x)
    C = expert_capacity(64 * 2, 4, cf)
    counts = out.routing.mask.sum(dim=0)
    assert int(counts.max()) <= C
    dropped = int(out.routing.dropped.sum())
    assert dropped == int(ref.routing.mask.sum()) - int(out.routing.mask.sum())
    assert out.routing.dropped_fraction == pytest.approx(dropped / 128)
    assert not (out.routing.dropped & out.routing.mask).any()
    # kept assignments keep their weight; MACs count only what ran
    kept = out.routing.mask
    torch.testing.assert_close(out.routing.weights[kept], ref.routing.weights[kept])
    assert out.macs_per_token < ref.macs_per_token or dropped == 0
    if cf >= 2.0:
        assert dropped == 0


def test_capacity_factor_must_be_positive():
    with pytest.raises(ValueError, match="capacity_factor must be > 0"):
        MoEFeedForward(D, 24, 4, capacity_factor=0.0)


def test_hash_routes_each_token_id_to_one_expert_wherever_it_stands():
    ffn = MoEFeedForward(D, 24, 6, HashGateConfig(), num_ids=VOCAB)
    ids = _ids(4, 20)
    out = ffn(torch.randn(4, 20, D), token_ids=ids)
    expert = out.routing.weights.argmax(dim=1)
    for tok in ids.unique():
        assert expert[ids.reshape(-1) == tok].unique().numel() == 1


def test_evomoe_phase_one_is_the_shared_expert_then_spawns():
    torch.manual_seed(0)
    ffn = MoEFeedForward(D, 24, 4, DTSGateConfig(), evomoe=EvoMoEConfig(share_steps=5, diversify="noise"))
    x = torch.randn(2, 8, D)
    ffn.advance(0)
    out = ffn(x, step=0)
    torch.testing.assert_close(out.output.reshape(-1, D), ffn.experts.run_one(0, x.reshape(-1, D)))
    assert out.active_experts == 1.0 and out.macs_per_token == ffn.macs_per_token_dense()
    w0 = ffn.experts.w1[0].detach().clone()
    ffn.advance(5)
    assert int(ffn.phase) == 2
    torch.testing.assert_close(ffn.experts.w1[0], w0)  # expert 0 kept, the others spawned from it
    assert not torch.equal(ffn.experts.w1[1], w0)
    assert (ffn.experts.w1[1] - w0).abs().max() < 1.0
    ffn.train()
    out = ffn(x, step=5)
    assert out.active_experts > 1.0  # the DTS gate is dense at the start of phase 2


def test_rejects_bad_shapes_and_configs():
    ffn = MoEFeedForward(D, 24, 4)
    with pytest.raises(ValueError, match=r"expected \(B, T, 16\)"):
        ffn(torch.randn(4, D))
    with pytest.raises(ValueError, match="k=5 exceeds n_experts=4"):
        MoEFeedForward(D, 24, 4, TopKGateConfig(k=5))
    with pytest.raises(TypeError, match="not registered"):
        MoEFeedForward(D, 24, 4, object())


def test_readme_example_runs():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- example: moe-ffn -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lost its MoEFeedForward example"
    scope: dict = {}
    exec(compile(m.group(1), "README.md:moe-ffn", "exec"), scope)  # noqa: S102 - our own README
    assert scope["loss"].requires_grad
