"""One searcher path (#20): every searcher is an ask/tell core behind one Ray adapter, so a new one
is one ``register_searcher`` call and runs through ``run_search`` on a real local Ray instance and
MLflow store; the driver resolves a trial's configuration once."""

from __future__ import annotations

import pickle
from typing import Any, Mapping

import pytest

from gatesearch.objectives import get_objective
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.searchers.registry import SEARCHERS, CoreRequest, SearcherSpec, register_searcher
from gatesearch.spaces import parse_space_file

#: every configuration the test searcher proposes, in order (then it says it is done)
PLAN = [{"gate": "hash", "n_experts": 4, "lr": 0.01}, {"gate": "softmax", "n_experts": 4, "lr": 0.01},
        {"gate": "hash", "n_experts": 8, "lr": 0.01}]
TOLD: list[tuple[str, dict | None, bool]] = []


class PlanCore:
    """A searcher that proposes PLAN in order: the smallest core the contract allows."""

    def __init__(self, request: CoreRequest):
        self.request, self.next = request, 0

    def ask(self, key: str) -> dict[str, Any] | None:
        if self.next >= len(PLAN):
            return None
        self.next += 1
        return dict(PLAN[self.next - 1])

    def tell(self, key: str, result: Mapping[str, Any] | None, *, stopped: bool = False) -> bool:
        TOLD.append((key, None if result is None else {m: result.get(m) for m in self.request.metrics}, stopped))
        return result is not None


@pytest.fixture
def plan_searcher():
    register_searcher(SearcherSpec("plan", "proposes a fixed plan (test)", PlanCore))
    TOLD.clear()
    yield
    SEARCHERS.unregister("plan")


def test_a_searcher_registered_with_one_call_runs_a_search_on_ray(ray_session, tmp_path, plan_searcher):
    text = """\
name: plan
objective: moe_digits
search: {searcher: plan, num_samples: 5, max_concurrent: 1, seed: 0}
fixed: {epochs: 1, expert_hidden: 16, expert_out: 8}
params:
  gate: {type: categorical, choices: [hash, softmax]}
  n_experts: {type: int, low: 4, high: 8}
  lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
"""
    result = run_search(parse_space_file(text, str(tmp_path / "plan.yaml")), output_dir=tmp_path / "runs")
    # the plan ran, in order, then the searcher's end ended the search (5 allowed, 3 proposed)
    assert [{k: t[k] for k in ("gate", "n_experts")} for t in result.trials] == \
        [{k: p[k] for k in ("gate", "n_experts")} for p in PLAN]
    assert result.failed == 0
    # every trial's final result was told to the core: its metrics, as reported, not stopped
    assert len(TOLD) == 3 and all(not stopped for _, _, stopped in TOLD)
    by_config = {(t["gate"], t["n_experts"]): t for t in result.trials}
    told = sorted((r["accuracy"], r["macs_per_sample"]) for _, r, _ in TOLD)
    assert told == sorted((t["accuracy"], t["macs_per_sample"]) for t in by_config.values())


def test_the_adapter_tells_a_stopped_trial_as_stopped_and_a_crash_as_failed_and_survives_a_checkpoint(tmp_path):
    from gatesearch.search.ray.searcher import CoreSearcher
    from gatesearch.spaces import Categorical, Space

    core = SEARCHERS["tpe"].core(Space({"gate": Categorical(("hash", "topk"))}), ["accuracy", "macs_per_sample"],
                                 ["max", "min"], seed=0, budget=10, capped=False)
    adapter = CoreSearcher(core)
    for trial in ("a", "b", "c"):
        assert adapter.suggest(trial)["gate"] in ("hash", "topk")
    adapter.on_trial_complete("a", {"accuracy": 0.9, "macs_per_sample": 3.0})
    adapter.on_trial_complete("b", None)  # ended without a result, no error: stopped early
    adapter.on_trial_complete("c", {"accuracy": 0.1}, error=True)
    import optuna

    S = optuna.trial.TrialState
    assert [t.state for t in adapter.core.study.trials] == [S.COMPLETE, S.PRUNED, S.FAIL]
    adapter.save(str(tmp_path / "searcher.pkl"))
    restored = CoreSearcher(SEARCHERS["tpe"].core(Space({"gate": Categorical(("hash",))}), ["accuracy", "macs_per_sample"],
                                                  ["max", "min"], seed=1, budget=10))
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert [t.values for t in restored.core.study.trials] == [[0.9, 3.0], None, None]
    assert restored.suggest("d")["gate"] in ("hash", "topk")  # the restored study's space, not the new one's


def test_a_configuration_is_resolved_once_per_process():
    objective = get_objective("moe_digits")
    calls = []
    original = objective.check
    objective.check = lambda full: (calls.append(1), original(full))[1]
    try:
        config = {"gate": "topk", "n_experts": 6, "k": 2, "lr": 0.0123456}
        first = objective.resolve(config)
        assert objective.resolve(dict(config)) is first  # the driver's dedup key, sink and progress
        assert objective.resolve(first) is first  # a worker's run(resolved)
        assert len(calls) == 1
        assert objective.resolve({**config, "k": 1}) is not first and len(calls) == 2
        kept = len(objective._resolved)
        for _ in range(2):  # a rejected configuration is checked again each time, never remembered
            with pytest.raises(ValueError, match="k"):
                objective.resolve({**config, "k": 7})
        assert len(objective._resolved) == kept
    finally:
        del objective.check
    # a resolved configuration pickles as a plain mapping of the same values
    assert dict(pickle.loads(pickle.dumps(first))) == dict(first)
