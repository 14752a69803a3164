"""Measured cost (objectives/cost.py): latency rises with the experts a sample runs and with the
experts there are, by rank over a sweep (measured, not timed against a threshold); peak memory and
expert-load imbalance are what they say; every MoE classification trial reports them per epoch."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import spearmanr

from gatesearch.models import MoENetwork, MoENetworkConfig, RouteContext, SoftmaxGateConfig, TopKGateConfig
from gatesearch.objectives.cost import MIB, _weights_bytes, load_cv, measure_inference

ROUNDS = 9  # interleaved rounds; the minimum per configuration damps a busy neighbour


def _net(gate, n: int) -> MoENetwork:
    torch.manual_seed(0)
    return MoENetwork(MoENetworkConfig(gate=gate, n_experts=n, expert_hidden=512, expert_out=64), d_in=128,
                      n_outputs=(10,), num_ids=None).eval()


def _latencies(configs):
    torch.manual_seed(1)
    x, ctx = torch.randn(256, 128), RouteContext(step=0, token_ids=torch.arange(256))
    nets = [_net(TopKGateConfig(k=k, noisy=False), n) for k, n in configs]
    best = [float("inf")] * len(nets)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(ROUNDS):
            for i, net in enumerate(nets):
                got = measure_inference(lambda net=net: net(x, ctx), 256, module=net)["latency_ms_per_sample"]
                best[i] = min(best[i], got)
    finally:
        torch.set_num_threads(threads)
    return best


@pytest.mark.slow  # a measurement: run alone (make test-slow), not beside another worker's trials (it flaked there)
def test_latency_rises_with_k_and_with_n_experts_by_rank():
    ks = [1, 2, 4, 8]
    by_k = _latencies([(k, 16) for k in ks])
    assert spearmanr(ks, by_k)[0] >= 0.8, by_k
    ns = [4, 16, 64]
    by_n = _latencies([(2, n) for n in ns])
    assert spearmanr(ns, by_n)[0] >= 0.8, by_n
    assert all(v > 0 for v in by_k + by_n)


def test_the_cpu_peak_memory_is_the_weights_plus_what_the_forward_holds():
    dense, sparse = _net(SoftmaxGateConfig(), 16), _net(TopKGateConfig(k=1, noisy=False), 16)
    x, ctx = torch.randn(256, 128), RouteContext(step=0, token_ids=torch.arange(256))
    peaks = {}
    for name, net in (("dense", dense), ("sparse", sparse)):
        got = measure_inference(lambda net=net: net(x, ctx), 256, module=net)
        weights = _weights_bytes(net) / MIB
        peaks[name] = got["peak_memory_mb"] - weights
        assert got["peak_memory_mb"] > weights  # the activations on top of the weights
    # dense: every expert's hidden layer for every sample at once (256 x 512 floats x 16 experts = 8 MiB);
    # top-1 holds less (the gathers and the expert bank's buffers keep it above one expert's 0.5 MiB)
    assert peaks["dense"] >= 256 * 512 * 4 * 16 / MIB * 0.9 and peaks["dense"] > 1.3 * peaks["sparse"] > 0


def test_expert_load_cv():
    balanced = torch.zeros(8, 4, dtype=torch.bool)
    balanced[torch.arange(8), torch.arange(8) % 4] = True
    assert load_cv([balanced]) == 0.0
    skewed = torch.zeros(8, 4, dtype=torch.bool)
    skewed[:, 0] = True  # every row to expert 0: loads (8, 0, 0, 0), std 3.46, mean 2
    assert load_cv([skewed]) == pytest.approx(3 ** 0.5)
    assert load_cv([balanced, skewed]) == pytest.approx(3 ** 0.5 / 2)  # averaged over layers
    assert load_cv([torch.ones(8, 4, dtype=torch.bool)]) == 0.0  # dense


def test_every_moe_classification_epoch_reports_the_measured_cost():
    from gatesearch.objectives import get_objective

    reports = []
    out = get_objective("moe_digits").run({"gate": "topk", "k": 1, "n_experts": 4, "epochs": 2}, report=reports.append)
    for r in reports:
        assert r["latency_ms_per_sample"] > 0 and r["train_step_ms"] > 0 and r["peak_memory_mb"] > 0
        assert 0 <= r["expert_load_cv"] < 2
    assert out["latency_ms_per_sample"] == reports[-1]["latency_ms_per_sample"]


@pytest.mark.parametrize("backbone", ["mlp", "vit"])
def test_the_exiting_inference_makes_the_decisions_of_the_batched_rule(backbone):
    """``infer`` (each row stops at its exit; only the rows still going run the next block) exits every
    row where ``exits(forward(x))`` does, with the same logits."""
    from gatesearch.models import EarlyExitNetwork
    from gatesearch.models.early_exit import EarlyExitConfig
    from gatesearch.models.vit import EarlyExitViT, ViTExitConfig

    seen = set()
    for seed in range(4):
        torch.manual_seed(seed)
        if backbone == "mlp":
            net, x = EarlyExitNetwork(EarlyExitConfig(n_blocks=4, hidden=32), d_in=20, n_classes=5), torch.randn(400, 20)
        else:
            net, x = EarlyExitViT(ViTExitConfig(n_blocks=3), image=(1, 8, 8), n_classes=10), torch.randn(100, 64)
        net.eval()
        for g in net.gates:  # gates that say something: rows exit at every depth
            torch.nn.init.normal_(g.weight, std=3.0)
            torch.nn.init.normal_(g.bias, std=1.5)
        out = net(x)
        for thr in (0.1, 0.5, 0.9):
            want = net.exits(out, thr)
            logits, got = net.infer(x, thr)
            assert torch.equal(got, want)
            assert torch.allclose(logits, torch.stack(out.logits, 1)[torch.arange(len(x)), want], atol=1e-4)
            seen |= set(got.tolist())
    assert len(seen) >= 2  # the rows did exit at different depths


def test_every_early_exit_epoch_reports_the_measured_cost_of_its_exiting_inference():
    from gatesearch.objectives import get_objective

    reports = []
    get_objective("early_exit_digits").run({"epochs": 2, "warmup_epochs": 1}, report=reports.append)
    for r in reports:
        assert r["latency_ms_per_sample"] > 0 and r["train_step_ms"] > 0 and r["peak_memory_mb"] > 0
