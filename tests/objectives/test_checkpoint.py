"""Per-epoch training state: a trial continued from its epoch-e state trains exactly as an
uninterrupted one (same seed, CPU), reports only the epochs after e, and the state loads with
weights_only=True."""

import io

import pytest
import torch

from gatesearch.objectives import get_objective
from gatesearch.objectives.data import DataMissing
from gatesearch.objectives.metrics import TIMINGS


def _saved(states):
    def save(state):  # what the search does: serialise it at once (the live tensors keep training)
        buf = io.BytesIO()
        torch.save(state, buf)
        states.append(buf.getvalue())
    return save


def _load(blob):
    return torch.load(io.BytesIO(blob), weights_only=True)


CASES = [
    ("moe_digits", {"gate": "topk", "k": 2, "noisy": True, "epochs": 4, "dropout": 0.2}),
    ("moe_digits", {"gate": "comet", "local_search": True, "ls_budget_epochs": 3.0, "epochs": 4}),
    ("evomoe_digits", {"share_epochs": 1.0, "epochs": 4, "tau_decay_epochs": 2.0}),
    ("early_exit_digits", {"epochs": 4, "warmup_epochs": 2, "hidden": 32, "alternate_every": 3, "dropout": 0.1}),
    ("threshold_exit_digits", {"epochs": 4, "hidden": 32}),
    ("moe_lm_shakespeare", {"epochs": 3, "steps_per_epoch": 5, "batch_size": 8, "context": 32, "eval_tokens": 1024,
                            "n_experts": 4, "dropout": 0.1, "k_sweep": False}),
]


@pytest.mark.parametrize("name,config", CASES, ids=[f"{n}-{c.get('gate', '')}" for n, c in CASES])
def test_continuing_from_a_checkpoint_equals_an_uninterrupted_run(name, config):
    objective = get_objective(name)
    assert objective.checkpoints
    try:
        full = objective.resolve(config)
        objective.data(full["data_seed"])
    except DataMissing as e:
        pytest.skip(str(e).split(";")[0])
    states, reports = [], []
    objective.run(full, report=reports.append, save=_saved(states))
    assert [r["epoch"] for r in reports] == list(range(1, full["epochs"] + 1))
    cut = 1 if full["epochs"] == 3 else 2
    resumed_states, resumed_reports = [], []
    objective.run(full, report=resumed_reports.append, save=_saved(resumed_states), restore=_load(states[cut - 1]))
    assert [r["epoch"] for r in resumed_reports] == list(range(cut + 1, full["epochs"] + 1))  # no epoch twice
    for a, b in zip(reports[cut:], resumed_reports):  # all but the measured times, which differ run to run
        a, b = ({k: v for k, v in r.items() if k not in TIMINGS} for r in (a, b))
        assert a == b, "a continued trial must report exactly what the uninterrupted one did"
    final, resumed_final = _load(states[-1]), _load(resumed_states[-1])
    assert final["epoch"] == resumed_final["epoch"] == full["epochs"] and final["step"] == resumed_final["step"]
    for key, value in final["model"].items():
        assert torch.equal(value, resumed_final["model"][key]), key


def test_a_state_without_the_optimiser_is_a_clear_error():
    objective = get_objective("moe_digits")
    full = objective.resolve({"epochs": 2})
    states = []
    objective.run(full, save=_saved(states))
    state = _load(states[0])
    state["optimizers"] = {}
    with pytest.raises(ValueError, match="no state for optimiser"):
        objective.run(full, restore=state)
