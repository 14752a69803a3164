"""count_macs: equals the built-in LM's reported macs_per_token (gates, train/eval, capacity, sdpa),
the ViT's and MLP's exit costs up to the gates' statistics, a hand count of a user's block with
nn.MultiheadAttention, and counts every MoE layer exactly once with its own number."""

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gatesearch.models import (
    CometGateConfig,
    DTSGateConfig,
    EarlyExitConfig,
    EarlyExitNetwork,
    LocalSearchConfig,
    MoEFeedForward,
    MoENetwork,
    MoENetworkConfig,
    RouteContext,
    TopKGateConfig,
    count_macs,
)
from gatesearch.models.moe_ffn import MoEFeedForwardOutput
from gatesearch.models.transformer import MoETransformerConfig, MoETransformerLM
from gatesearch.models.vit import EarlyExitViT, ViTExitConfig
from tests.gates import builtin_gates

V = 40
#: every built-in gate with its default config (from the registry: a new gate is covered without a test
#: edit), top-k also with k=1 (Switch) and k=2, COMET with k=2
GATES = [config() for name, config in builtin_gates().items() if name not in ("topk", "comet")] + [
    TopKGateConfig(k=1), TopKGateConfig(k=2), CometGateConfig(k=2)]


def _lm(gate, **kw):
    torch.manual_seed(0)
    cfg = MoETransformerConfig(vocab=V, context=16, n_layers=kw.pop("n_layers", 2), n_heads=2, d_head=8, gate=gate,
                               n_experts=4, attention=kw.pop("attention", "math"), **kw)
    return MoETransformerLM(cfg)


def _ids(B=3, T=12):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("gate", GATES, ids=lambda g: type(g).__name__ + str(getattr(g, "k", "")))
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("capacity", [None, 1.0], ids=["no_cap", "cap1"])
def test_lm_equals_its_reported_macs_per_token(gate, train, capacity):
    model = _lm(gate, capacity_factor=capacity, moe_every=1 if capacity else 2)
    ids = _ids()
    torch.manual_seed(1)  # the same noise (noisy top-k, Gumbel) in the count and the real call
    count = count_macs(model, ids, train=train, forward_kwargs={"step": 2})
    torch.manual_seed(1)
    with torch.set_grad_enabled(train):
        out = model.train(train)(ids, step=2)
    assert count.tokens == ids.numel() and count.samples == 3
    assert count.per_token == pytest.approx(out.macs_per_token, rel=1e-12)
    # breakdown: dense = the LM's analytic non-MoE part, each MoE layer counted once with its own count
    assert count.dense == pytest.approx(model.dense_macs_per_token(12) * ids.numel(), rel=1e-12)
    assert count.elementwise == 0.0 and len(count.moe) == len(model.moe_layers)
    assert sum(count.moe.values()) == pytest.approx((out.macs_per_token - model.dense_macs_per_token(12)) * ids.numel())
    if capacity and isinstance(gate, TopKGateConfig):
        assert max(r.dropped_fraction for r in out.routings) > 0  # the capacity really dropped something


def test_dts_counts_the_dense_training_phase_and_eval_top1():
    model = _lm(DTSGateConfig())
    ids = _ids()
    torch.manual_seed(1)
    train = count_macs(model, ids, train=True, forward_kwargs={"step": 0})  # τ = 2: many experts per token
    evaluation = count_macs(model, ids)  # top-1
    expert = 2 * model.cfg.d_model * model.cfg.ffn_mult * model.cfg.d_model
    gate = model.cfg.d_model * model.cfg.n_experts
    for name in evaluation.moe:  # eval: the gate + exactly one expert per token
        assert evaluation.moe[name] == ids.numel() * (gate + expert)
    assert min(train.moe.values()) > 2 * ids.numel() * expert
    assert train.dense == evaluation.dense


def test_sdpa_on_cpu_is_counted_as_the_matmul_attention():
    ids = _ids()
    model = _lm(TopKGateConfig(k=2), attention="sdpa").eval()
    reported = model(ids).macs_per_token  # the matmul attention's count, by the LM's contract
    assert count_macs(model, ids).per_token == pytest.approx(reported, rel=1e-12)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(ids)
    assert counter.get_total_flops() / 2 / ids.numel() < reported  # torch alone misses the CPU kernel


class _OverReporting(MoEFeedForward):
    """An MoE FFN whose own count is 1000 MACs/token above what it runs (a gate with extra cost)."""

    def forward(self, x, **kw):
        out = super().forward(x, **kw)
        return MoEFeedForwardOutput(output=out.output, routing=out.routing, macs_per_token=out.macs_per_token + 1000)


def test_each_moe_layer_is_counted_once_with_its_own_count():
    model = _lm(TopKGateConfig(k=2))
    for block in model.blocks:
        ffn = _OverReporting(16, 64, 4, TopKGateConfig(k=2), num_ids=V)
        block.ffn = ffn
    ids = _ids()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        out = model.eval()(ids)
    count = count_macs(model, ids)
    # what ran (flop counter) + the surplus each layer reports, once per layer: not 0, not twice
    assert count.total == pytest.approx(counter.get_total_flops() / 2 + 2 * 1000 * ids.numel(), rel=1e-12)
    assert count.per_token == pytest.approx(out.macs_per_token, rel=1e-12)
    assert list(count.moe) == ["blocks.0.ffn", "blocks.1.ffn"]  # the MoEFeedForward, not its inner MoELayer


def test_sample_level_moe_network():
    torch.manual_seed(0)
    net = MoENetwork(MoENetworkConfig(gate=TopKGateConfig(k=2), n_experts=6, expert_hidden=24, expert_out=12,
                                      tower_hidden=8, local_search=LocalSearchConfig(budget_steps=10)),
                     d_in=16, n_outputs=[10, 3])
    x = torch.randn(20, 16)
    ctx = RouteContext(step=3)
    for train in (False, True):
        torch.manual_seed(1)
        count = count_macs(net, (x, ctx), train=train)
        torch.manual_seed(1)
        out = net.train(train)(x, ctx)
        assert count.per_sample == pytest.approx(out.macs_per_sample, rel=1e-12) and count.tokens is None
        assert list(count.moe) == ["moe"]
    with pytest.raises(ValueError, match="per_token needs"):
        count.per_token


@pytest.mark.parametrize("gated", [False, True])
@pytest.mark.parametrize("patch", [7, 5])
def test_vit_equals_its_exit_cost_up_to_the_gates_statistics(gated, patch):
    torch.manual_seed(0)
    net = EarlyExitViT(ViTExitConfig(patch=patch, n_blocks=3), image=(1, 28, 28), n_classes=10, gated=gated)
    x = torch.randn(4, 784)
    L, C = net.n_exits, net.n_classes
    # exit_costs charges 9·C + 6 per gate; the counter sees its Linear(4, 1): 4 MACs + 1 bias. The other
    # 9·C + 1 (softmax statistics and the sigmoid) is a function, not a module.
    stats = (L - 1) * (9 * C + 1) if gated else 0
    full = count_macs(net, x, count_elementwise=True)
    assert full.per_sample + stats == pytest.approx(net.exit_costs()[-1], rel=1e-12)
    matmul = count_macs(net, x)
    assert matmul.per_sample == pytest.approx(net.matmul_macs(L - 1) + (4 * (L - 1) if gated else 0), rel=1e-12)
    assert full.moe == {} and full.dense == matmul.dense


def test_mlp_early_exit_network_equals_its_exit_cost_up_to_the_gates_statistics():
    torch.manual_seed(0)
    net = EarlyExitNetwork(EarlyExitConfig(n_blocks=3, hidden=24), d_in=30, n_classes=5, gated=True)
    count = count_macs(net, torch.randn(7, 30), count_elementwise=True)
    assert count.per_sample + 2 * (9 * 5 + 1) == pytest.approx(net.exit_costs()[-1], rel=1e-12)


class _UserLM(nn.Module):
    """A user's model: embedding, one pre-LN block (nn.MultiheadAttention + MoEFeedForward), head."""

    def __init__(self, d=16, heads=4, vocab=30, n=4, k=2, hidden=32):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.ln1, self.ln2, self.ln_f = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ffn = MoEFeedForward(d, hidden, n_experts=n, gate=TopKGateConfig(k=k))
        self.head = nn.Linear(d, vocab)

    def forward(self, ids, step=0):
        h = self.emb(ids)
        T = ids.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        a = self.ln1(h)
        h = h + self.attn(a, a, a, attn_mask=causal, need_weights=False)[0]
        h = h + self.ffn(self.ln2(h), step=step).output
        return self.head(self.ln_f(h))


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_user_model_against_a_hand_count(train):
    d, T, vocab, n, k, hidden = 16, 8, 30, 4, 2, 32
    torch.manual_seed(0)
    model = _UserLM(d, 4, vocab, n, k, hidden)
    ids = torch.randint(0, vocab, (2, T))
    count = count_macs(model, ids, train=train)
    # per token: q, k, v, out projections 4·d²; Q·Kᵀ and A·V over the full T×T scores 2·T·d;
    # the top-k gate d·n (its noise projection another d·n in training); k experts of d·h + h·d;
    # the head d·V. Embedding, LayerNorms, biases, softmax, GELU: 0.
    gate = d * n * (2 if train else 1)
    hand = 4 * d * d + 2 * T * d + gate + k * 2 * d * hidden + d * vocab
    assert count.per_token == hand
    assert count.moe["ffn"] == (gate + k * 2 * d * hidden) * ids.numel()
    # elementwise: 3 LayerNorms at 2.5·d, the attention's q, k, v and out biases 4·d, the head's bias V
    full = count_macs(model, ids, train=train, count_elementwise=True)
    assert full.per_token == hand + 3 * 2.5 * d + 4 * d + vocab
    assert full.elementwise == (3 * 2.5 * d + 4 * d + vocab) * ids.numel()


def test_modes_grad_rng_and_fastpath_are_restored():
    model = _UserLM().eval()
    model.ffn.train()  # a mixed-mode model keeps its mixture
    seen = []
    model.attn.register_forward_hook(lambda m, a, o: seen.append((m.training, torch.is_grad_enabled())))
    ids = torch.randint(0, 30, (2, 8))
    rng = torch.get_rng_state()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    count_macs(model, ids)
    count_macs(model, ids, train=True)
    assert seen == [(False, False), (True, True)]
    assert not model.training and model.ffn.training and not model.attn.training
    assert torch.equal(torch.get_rng_state(), rng) and torch.backends.mha.get_fastpath_enabled() == fastpath


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="example_input"):
        count_macs(nn.Linear(2, 2), (3,))
