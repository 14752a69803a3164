"""Every registered searcher, end to end on a real local Ray instance and MLflow store: a search of
two trials, then ``extend`` by one, which restores the searcher from the state Ray saved (its
recipe and history, replayed: :mod:`gatesearch.search.searchers.recorded`) and asks it again. Run by
``make test-latest`` (the newest library versions the ranges allow) and ``make test-all``; ``make
test`` covers the same path with the pickle round trip of the searcher contract and the end-to-end
tests of several searchers."""

from __future__ import annotations

import glob
import pickle
import warnings
from pathlib import Path

import pytest

from gatesearch.search.lifecycle.runner import extend_search, run_search
from gatesearch.search.searchers.recorded import RecordedCore
from gatesearch.search.searchers.registry import SEARCHERS
from gatesearch.search.tracking.tracker import Tracker
from gatesearch.spaces import parse_space_file

pytestmark = [pytest.mark.slow, pytest.mark.latest]

SPACE = """\
name: every-NAME
objective: moe_digits
search: {searcher: NAME, num_samples: 2, max_concurrent: 1, seed: 0}
fixed: {epochs: 1, expert_hidden: 8, expert_out: 8}
params:
  gate: {type: categorical, choices: [hash, softmax, topk]}
  n_experts: {type: int, low: 2, high: 6}
  lr: {type: float, low: 1.0e-3, high: 1.0e-1, log: true}
"""


def _installed(name: str):
    missing = SEARCHERS[name].missing()
    return pytest.param(name, marks=pytest.mark.skipif(bool(missing), reason=f"optional extra not installed: {missing}"))


@pytest.mark.parametrize("name", [_installed(n) for n in SEARCHERS])
def test_a_search_then_an_extension_with_the_restored_searcher(ray_session, tmp_path, name):
    sf = parse_space_file(SPACE.replace("NAME", name), str(tmp_path / "s.yaml"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BoTorch's BadInitialCandidatesWarning on two points
        first = run_search(sf, output_dir=tmp_path / "out")
        assert len(first.trials) == 2 and first.failed == 0
        more = extend_search(first.search_dir, num_samples=1)
    assert len(more.trials) == 3 and more.failed == 0
    tracker = Tracker(first.tracking_uri, f"every-{name}")
    children = [c for c in tracker.children(first.parent_run_id) if c.status == "FINISHED"]
    configs = {(c.params["gate"], c.params["n_experts"], c.params["lr"]) for c in children}
    assert len(children) == 3 and len(configs) == 3  # the restored searcher knew what it had proposed
    # the extension's saved searcher: our recipe and history, replayed, with every call since
    [state] = glob.glob(str(Path(first.search_dir).parent / f"{Path(first.search_dir).name}.extend1"
                            / "searcher-state-*.pkl"))
    saved = pickle.loads(Path(state).read_bytes())
    core = pickle.loads(saved["inner"])["core"] if "inner" in saved else saved["core"]
    assert isinstance(core, RecordedCore) and core.budget >= 3
    asked = [e for e in core.__getstate__()["events"] if e[0] == "ask" and e[2] is not None]
    assert len(asked) >= 3
    params = tracker.params(first.parent_run_id)
    assert params["searcher"] == name
    if name == "auto":  # this space is flat: auto ran GP, said so on the parent run, and restored it as GP
        import optuna

        assert params["searcher_auto"] == "gp" and isinstance(core.inner.study.sampler, optuna.samplers.GPSampler)
    else:
        assert "searcher_auto" not in params
