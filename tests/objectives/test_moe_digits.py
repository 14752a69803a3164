"""The digits MoE objective trains real models; DSelect-k/COMET routing becomes hard."""

import pytest
import torch

from gatesearch.models import RouteContext
from gatesearch.objectives import get_objective
from gatesearch.objectives.metrics import TIMINGS
from gatesearch.objectives.trainer import train


@pytest.fixture(scope="module")
def objective():
    return get_objective("moe_digits")


@pytest.mark.parametrize("gate", ["dselect_k", "comet"])
def test_routing_becomes_hard_after_training(objective, gate):
    cfg = objective.resolve({"gate": gate, "n_experts": 8, "k": 2, "gamma": 0.1, "entropy_weight": 0.1,
                             "lr": 0.01, "epochs": 6})
    data = objective.data(0)
    net, tc = objective.build(cfg, data)
    metrics = train(net, data, tc)
    assert metrics["accuracy"] > 0.85
    net.eval()
    with torch.no_grad():
        w = net(data.val.x, RouteContext(step=10**6, token_ids=data.val.ids)).routings[0].weights
    target = 1 - 2 / 8
    assert (w < 1e-5).float().mean() >= target - 0.01
    # per row: most rows already route to <= k experts (the rest are still in the smooth region)
    assert ((w > 0).sum(1) <= 2).float().mean() >= 0.8


def test_reports_every_epoch_and_learns(objective):
    seen = []
    final = objective.run({"gate": "topk", "epochs": 4, "k": 1}, report=seen.append)
    assert [m["epoch"] for m in seen] == [1, 2, 3, 4]
    assert seen[-1] == final and "test_accuracy" in final and "test_accuracy" not in seen[0]
    assert final["accuracy"] > 0.8 and seen[-1]["accuracy"] > seen[0]["accuracy"] - 0.05
    assert final["active_experts"] == 1.0


def test_local_search_hardens_within_its_budget(objective):
    cfg = objective.resolve({"gate": "comet", "local_search": True, "ls_budget_epochs": 1.0, "epochs": 2})
    data = objective.data(0)
    net, tc = objective.build(cfg, data)
    train(net, data, tc)
    gate = net.moe.gates[0]
    assert bool(gate.hardened) and sorted(gate.perm.tolist()) == list(range(8))


def test_same_seed_same_result(objective):
    a = objective.run({"gate": "comet", "epochs": 2, "seed": 3})
    b = objective.run({"gate": "comet", "epochs": 2, "seed": 3})
    assert {"latency_ms_per_sample", "train_step_ms"} <= set(a)  # measured: they differ run to run; all else is equal
    assert {k: v for k, v in a.items() if k not in TIMINGS} == {k: v for k, v in b.items() if k not in TIMINGS}


def test_bad_configs_name_the_field(objective):
    with pytest.raises(ValueError, match=r"^gate: unknown value 'coment' \(did you mean 'comet'\?\)"):
        objective.resolve({"gate": "coment"})
    with pytest.raises(ValueError, match=r"^k: k=9 must be <= n_experts=8"):
        objective.resolve({"k": 9, "n_experts": 8})
    with pytest.raises(ValueError, match=r"^n_expert: unknown parameter \(did you mean 'n_experts'\?\)"):
        objective.resolve({"n_expert": 4})


def test_non_finite_loss_fails_loudly(objective):
    import dataclasses

    data = objective.data(0)
    x = data.train.x.clone()
    x[5, 3] = float("nan")
    bad = dataclasses.replace(data, train=dataclasses.replace(data.train, x=x))
    net, tc = objective.build(objective.resolve({"gate": "softmax", "epochs": 1}), bad)
    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        train(net, bad, tc)
