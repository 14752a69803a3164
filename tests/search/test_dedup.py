"""Deduplication: an evaluated configuration is answered from memory, not trained again or charged."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.loop.dedup import EXHAUSTED_AFTER, ConfigKey, ProposalMemory
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import parse_space_file


def test_the_key_is_the_active_resolved_configuration():
    key = ConfigKey("moe_digits", {"epochs": 2})
    # k has no effect on the hash gate; the fixed epochs are part of the configuration
    assert key({"gate": "hash", "k": 1}) == key({"gate": "hash", "k": 3}) == key({"gate": "hash", "epochs": 2})
    assert key({"gate": "topk", "k": 1}) != key({"gate": "topk", "k": 3})
    assert key({"gate": "hash", "seed": 1}) != key({"gate": "hash", "seed": 2})  # another seed is another trial
    assert key({"gate": "nope"}) == key({"gate": "nope"})  # rejected configurations key on their raw values


def test_memory_answers_finished_and_waits_for_running_configurations():
    memory = ProposalMemory(lambda c: str(c["x"]))
    assert memory.classify({"x": 1}) == ("new", "1")
    memory.start("t1", "1")
    assert memory.classify({"x": 1}) == ("running", "1")
    memory.wait("1", "t2")  # proposed again while t1 runs: answered when it ends
    assert memory.end("t1", {"acc": 0.5}) == (["t2"], {"acc": 0.5})
    assert memory.classify({"x": 1})[0] == "finished" and memory.finished["1"] == {"acc": 0.5}
    memory.start("t3", "2")
    assert memory.end("t3", None) == ([], None)  # failed or stopped early: nothing recorded, a repeat runs
    assert memory.classify({"x": 2})[0] == "new"
    assert not any(memory.repeat() for _ in range(EXHAUSTED_AFTER - 1)) and memory.repeat()


def test_propose_answers_repeats_and_returns_the_first_new_configuration():
    """The loop shared by the Ray searcher and the benchmark: finished repeats answered at once,
    running repeats queued on their trial, the searcher's end marker passed on, names running out."""
    memory = ProposalMemory(lambda c: str(c))
    memory.start("t1", "1")
    memory.end("t1", {"acc": 0.5})  # 1 finished
    memory.start("t2", "2")  # 2 running
    answered = []
    script = iter([1, 2, 1, 3])
    got = memory.propose(lambda name: next(script), lambda name, r: answered.append((name, r)), ["a", "b", "c", "d"])
    assert (got.outcome, got.proposal, got.config, got.key) == ("new", "d", 3, "3")
    assert answered == [("a", {"acc": 0.5}), ("c", {"acc": 0.5})] and memory.waiting == {"2": ["b"]}
    assert memory.answered == 3 and memory.repeats_in_a_row == 2
    assert memory.propose(lambda name: None, None, ["e"]).outcome == "end"
    assert memory.propose(lambda name: 2, None, ["f", "g"]).outcome == "later"  # only waiting repeats
    got = memory.propose(lambda name: 1, lambda name, r: None, (str(i) for i in range(2 * EXHAUSTED_AFTER)))
    assert got.outcome == "exhausted" and memory.repeats_in_a_row >= EXHAUSTED_AFTER


SPACE = """\
name: dedup
objective: moe_digits
search: {{searcher: random, num_samples: 4, max_concurrent: 2, seed: 3{extra}}}
fixed: {{epochs: 1, n_experts: 2, expert_hidden: 8, expert_out: 8}}
params:
  gate: {{type: categorical, choices: [hash, softmax]}}
"""


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_a_two_point_space_trains_each_point_once_and_ends(ray_session, tmp_path):
    """num_samples 4 over 2 configurations: with dedup, 2 trials (repeats are answered, not
    charged, until the space counts as exhausted); without it, 4 trials with repeats."""
    result = run_search(parse_space_file(SPACE.format(extra=""), str(tmp_path / "d.yaml")), output_dir=tmp_path / "a")
    children = Tracker(result.tracking_uri, "dedup").children(result.parent_run_id)
    assert sorted(c.params["gate"] for c in children) == ["hash", "softmax"]
    assert result.extra["searcher_deduplicated"] >= EXHAUSTED_AFTER
    parent = MlflowClient(result.tracking_uri).get_run(result.parent_run_id).data.metrics
    assert parent["searcher_deduplicated"] == result.extra["searcher_deduplicated"]

    off = parse_space_file(SPACE.format(extra=", dedup: false").replace("name: dedup", "name: nodedup"),
                           str(tmp_path / "n.yaml"))
    result = run_search(off, output_dir=tmp_path / "b")
    children = Tracker(result.tracking_uri, "nodedup").children(result.parent_run_id)
    assert len(children) == 4  # 4 trials over 2 configurations: repeats were trained again
    assert result.extra["searcher_deduplicated"] == 0


def test_the_memory_survives_a_searcher_checkpoint(tmp_path):
    """Ray saves the searcher at every experiment snapshot; a resumed search must still answer
    repeats of configurations finished before the stop (and the inner searcher's state too)."""
    import optuna

    from gatesearch.search.ray.searcher import CoreSearcher, Deduplicated
    from gatesearch.search.searchers.registry import SEARCHERS
    from gatesearch.spaces import Categorical, Space

    def searcher():
        inner = CoreSearcher(SEARCHERS["random"].core(Space({"gate": Categorical(("hash",))}),
                                                      ["accuracy", "macs_per_sample"], ["max", "min"], seed=0,
                                                      budget=100, capped=False))
        return Deduplicated(inner, ConfigKey("moe_digits", {"epochs": 1}))

    first = searcher()
    assert first.suggest("t1") == {"gate": "hash"}
    first.on_trial_complete("t1", {"accuracy": 0.9, "macs_per_sample": 10.0, "config": {"gate": "hash"}})
    first.save(str(tmp_path / "searcher.pkl"))

    resumed = searcher()
    resumed.restore(str(tmp_path / "searcher.pkl"))
    assert resumed.suggest("t2") is None  # only repeats of the one configuration: nothing to run
    assert resumed.memory.answered == Deduplicated.PER_CALL
    study = resumed.inner.core.study
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 1 + Deduplicated.PER_CALL and all(t.values == [0.9, 10.0] for t in done)
