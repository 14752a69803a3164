"""Early-exit objectives and metrics: JEI-DNN training pieces, threshold budget sweep,
ECE, split-conformal coverage, ROC AUC — on real digits."""

import numpy as np
import pytest
import torch

from gatesearch.models import EarlyExitConfig, EarlyExitNetwork
from gatesearch.objectives import get_objective
from gatesearch.objectives.auc import mean_task_auc, roc_auc
from gatesearch.objectives.calibration import expected_calibration_error
from gatesearch.objectives.conformal import split_conformal
from gatesearch.objectives.data import load_digits
from gatesearch.objectives.exit_evaluation import budget_sweep, thresholds_for_prior
from gatesearch.objectives.exit_losses import gate_loss, im_loss, optimal_exits
from gatesearch.objectives.exit_training import ExitTrainConfig, train_early_exit


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=0)


@pytest.fixture(scope="module")
def plain_net(digits):
    torch.manual_seed(0)
    net = EarlyExitNetwork(EarlyExitConfig(n_blocks=4, hidden=32), d_in=digits.d_in, n_classes=10, gated=False)
    train_early_exit(net, digits, ExitTrainConfig(epochs=4, warmup_epochs=4, lr=3e-3), jei=False)
    return net


def test_threshold_budget_sweep_is_monotone_in_macs(plain_net, digits):
    points = budget_sweep(plain_net, digits, "cpu", "max_softmax")
    assert len(points) == 39 and [p["q"] for p in points] == sorted(p["q"] for p in points)
    macs = [p["macs_per_sample"] for p in points]
    assert all(a <= b + 1e-9 for a, b in zip(macs, macs[1:])), macs
    costs = plain_net.exit_costs()
    assert costs[0] <= macs[0] < macs[-1] <= costs[-1]
    # more compute buys accuracy overall: the cheapest point is not better than the dearest
    assert points[0]["accuracy"] <= points[-1]["accuracy"] + 0.02


def test_thresholds_follow_the_exit_prior():
    rng = np.random.default_rng(0)
    conf = rng.random((1000, 3))
    thr = thresholds_for_prior(conf, np.array([0.5, 0.3, 0.2]))
    hit = conf >= thr
    first = np.where(hit[:, 0], 0, np.where(hit[:, 1], 1, 2))
    assert np.bincount(first, minlength=3).tolist() == [500, 300, 200]


def test_conformal_coverage_on_held_out_digits(plain_net, digits):
    with torch.no_grad():
        plain_net.eval()
        pv = plain_net(digits.val.x).logits[-1].softmax(1).numpy()
        pt = plain_net(digits.test.x).logits[-1].softmax(1).numpy()
    out = split_conformal(pv, digits.val.y[:, 0].numpy(), pt, digits.test.y[:, 0].numpy(), alpha=0.05)
    assert out["coverage"] >= 0.95 - 0.04  # 1 - alpha - tolerance (~360 test images)
    assert 1.0 <= out["set_size"] < 3.0


def test_conformal_quantile_is_exact_on_uniform_scores():
    rng = np.random.default_rng(1)
    n, c = 20000, 5
    probs = rng.dirichlet(np.ones(c), size=n)
    y = np.array([rng.choice(c, p=p) for p in probs])  # labels drawn from the predicted probabilities
    out = split_conformal(probs[:10000], y[:10000], probs[10000:], y[10000:], alpha=0.1)
    assert abs(out["coverage"] - 0.9) < 0.015


def test_ece():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 50000)
    calibrated = rng.random(50000) < conf
    assert expected_calibration_error(conf, calibrated) < 0.01
    overconfident = rng.random(50000) < conf - 0.2
    assert expected_calibration_error(conf, overconfident) == pytest.approx(0.2, abs=0.02)


def test_roc_auc():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    probs = np.eye(3)[[0, 1, 2, 0]]
    assert roc_auc(probs, np.array([0, 1, 2, 0])) == 1.0
    assert np.isnan(roc_auc(np.array([0.2, 0.3]), np.array([1, 1])))
    assert mean_task_auc([np.array([0.1, 0.9]), np.array([0.9, 0.1])], np.array([[0, 0], [1, 1]])) == 0.5


def test_surrogate_targets_and_gate_loss():
    ce = torch.tensor([[2.0, 0.5, 0.1], [0.05, 0.04, 0.03]])
    costs = torch.tensor([1.0, 2.0, 4.0])
    assert optimal_exits(ce, costs, lam=0.0).tolist() == [2, 2]
    # CE + λ·C/C_L: row 1 = (2.25, 1.0, 1.1) -> exit 1; row 2 = (0.30, 0.54, 1.03) -> exit 0
    assert optimal_exits(ce, costs, lam=1.0).tolist() == [1, 0]
    logits = torch.tensor([[-10.0, 10.0], [10.0, 10.0]])  # gate 1 says "stay", gate 2 "exit"; row 2 exits at 1
    good = gate_loss(logits, torch.tensor([1, 0]), torch.ones(2)).item()
    bad = gate_loss(-logits, torch.tensor([1, 0]), torch.ones(2)).item()
    assert good < 1e-3 < bad


def test_weighted_im_loss_keeps_the_value_but_weights_the_gradient():
    torch.manual_seed(0)
    logits = [torch.randn(8, 5, requires_grad=True) for _ in range(3)]
    y = torch.randint(0, 5, (8,))
    p = torch.tensor([[0.9, 0.05, 0.05]]).expand(8, 3)
    weighted, plain = im_loss(logits, p, y, "weighted"), im_loss(logits, p, y, "plain")
    assert weighted.item() == pytest.approx(plain.item(), rel=1e-5)  # ρ rescales the value back
    weighted.backward()
    g_w = [lg.grad.norm().item() for lg in logits]
    assert g_w[0] > 5 * g_w[1]  # the gradient follows P (exit 1 dominates)


@pytest.mark.parametrize("name", ["early_exit_digits", "threshold_exit_digits"])
def test_exit_objectives_report_every_epoch(name):
    objective = get_objective(name)
    reports = []
    final = objective.run(objective.resolve({"epochs": 3, "warmup_epochs": 2, "hidden": 32}), report=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    for key in ("accuracy", "macs_per_sample", "ece"):
        assert all(np.isfinite(r[key]) for r in reports)
    assert final["accuracy"] > 0.8 and "test_accuracy" in final and "test_macs_per_sample" in final
    net = objective.build(objective.resolve({"hidden": 32}), objective.data(0))
    costs = net.exit_costs()
    assert costs[0] <= final["macs_per_sample"] <= costs[-1]
    if name == "early_exit_digits":
        assert 0.85 <= final["conformal_coverage"] <= 1.0
        assert sum(final[f"exit_fraction_{l}"] for l in range(1, 5)) == pytest.approx(1.0)
    else:
        points = final["operating_points"]
        assert len(points) == 39 and all({"q", "accuracy", "macs_per_sample"} <= set(p) for p in points)
        macs = [p["macs_per_sample"] for p in points]
        assert macs == sorted(macs)  # a larger budget q never costs less


def test_jei_threshold_sweep_gives_points_monotone_in_macs():
    objective = get_objective("early_exit_digits")
    final = objective.run(objective.resolve({"epochs": 3, "warmup_epochs": 2, "hidden": 32}))
    points = final["operating_points"]
    assert [p["exit_threshold"] for p in points] == [round(0.05 * i, 2) for i in range(1, 20)]
    for key in ("macs_per_sample", "test_macs_per_sample"):
        macs = [p[key] for p in points]
        assert macs == sorted(macs)  # a higher threshold exits later
    at_default = next(p for p in points if p["exit_threshold"] == 0.5)
    assert at_default["accuracy"] == pytest.approx(final["accuracy"])
    assert at_default["macs_per_sample"] == pytest.approx(final["macs_per_sample"])


@pytest.mark.parametrize("name", ["early_exit_vit_fashion", "threshold_exit_vit_fashion"])
def test_vit_exit_objectives_train_on_a_fashion_subset(name):
    import copy
    from dataclasses import replace

    from gatesearch.objectives.data import DataMissing

    objective = get_objective(name)
    try:
        data = objective.data(0)
    except DataMissing as e:
        pytest.skip(str(e).split(";")[0])
    cut = lambda s, n: replace(s, x=s.x[:n], y=s.y[:n], ids=s.ids[:n])  # noqa: E731
    tiny = copy.copy(objective)
    tiny._cache = {0: replace(data, train=cut(data.train, 4000), val=cut(data.val, 500), test=cut(data.test, 500))}
    reports = []
    final = tiny.run(tiny.resolve({"epochs": 3, "warmup_epochs": 2} if name.startswith("early") else {"epochs": 3}),
                     report=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert final["accuracy"] > 0.5  # 10 classes: far above chance after 3 epochs on 4,000 images
    net = tiny.build(tiny.resolve({}), data)
    assert net.n_patches == 16 and net.config.hidden == 32
    costs = net.exit_costs()
    assert costs == sorted(costs) and costs[0] <= final["macs_per_sample"] <= costs[-1]
    macs = [p["macs_per_sample"] for p in final["operating_points"]]
    assert macs == sorted(macs)


def _jei_states(digits, **knobs):
    """Train a small JEI-DNN; return every epoch's saved state (model, counters, frozen IMs) and reports."""
    torch.manual_seed(0)
    net = EarlyExitNetwork(EarlyExitConfig(n_blocks=3, hidden=16), d_in=digits.d_in, n_classes=10, gated=True)
    states, reports = [], []
    cfg = ExitTrainConfig(epochs=6, warmup_epochs=2, batch_size=128, alternate_every=3, **knobs)
    train_early_exit(net, digits, cfg, jei=True, save=lambda s: states.append({
        "model": {k: v.clone() for k, v in s["model"].items()}, **{k: v for k, v in s["extra"].items()}}),
        report=reports.append)
    return states, reports


def _im_params(state, i):
    return [v for k, v in state["model"].items() if k.startswith(f"ims.{i}.")]


def test_released_im_freezing_freezes_a_classifier_that_stopped_improving_for_good(digits):
    """#23 item 4, the released dynn rule: after each gate/classifier epoch an IM whose validation
    accuracy did not beat its best is frozen; a frozen IM never changes again; once all are frozen
    only the gates train."""
    states, reports = _jei_states(digits, freeze_ims=True, lr=1e-9)  # nothing improves: all freeze
    assert [r["frozen_ims"] for r in reports[2:]] == [0, 3, 3, 3]  # epoch 3 sets the bests, epoch 4 freezes
    for i in range(3):  # frozen after epoch 4: the IMs never change again, while the gates do
        for later in states[4:]:
            assert all(torch.equal(a, b) for a, b in zip(_im_params(states[3], i), _im_params(later, i)))
    gates = [k for k in states[3]["model"] if k.startswith("gates.")]
    assert any(not torch.equal(states[3]["model"][k], states[5]["model"][k]) for k in gates)

    states, reports = _jei_states(digits, freeze_ims=True)  # real training: frozen is monotone and final
    frozen = [s["frozen_ims"] for s in states]
    for a, b in zip(frozen, frozen[1:]):
        assert bool((b | a).eq(b).all())  # never unfrozen
    for e, state in enumerate(states[:-1]):
        for i in torch.nonzero(state["frozen_ims"]).flatten().tolist():
            assert all(torch.equal(a, b) for a, b in zip(_im_params(state, i), _im_params(states[e + 1], i)))


def test_released_alternation_restarts_with_a_gate_phase_every_epoch(digits):
    batches = -(-len(digits.train) // 128)  # per epoch
    reset, _ = _jei_states(digits, reset_alternation=True)
    running, reports = _jei_states(digits)
    assert [s["batch_no"] for s in reset[2:]] == [batches] * 4  # the counter restarts every epoch
    assert [s["batch_no"] for s in running[2:]] == [batches * e for e in (1, 2, 3, 4)]  # ours: it runs on
    assert "frozen_ims" not in reports[-1]  # not frozen by default (no metric either)
