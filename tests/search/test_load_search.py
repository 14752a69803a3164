"""The notebook API: ``gatesearch.load_search`` gives a finished search back (from its folder or its
parent run id) as a SearchResult whose front and trials are pandas DataFrames, failed trials with
their reason, and whose ``plot()`` is a matplotlib figure; ``overrides`` typos get a did-you-mean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gatesearch
from tests import harness

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = '''\
def train(config, report):
    if config["width"] > 800:
        raise ValueError(f"width {config['width']} is too wide for this model")
    for epoch in range(1, 3):
        report({"score": config["width"] / 1000 + epoch / 100, "cost": float(config["width"])})
'''
SPACE = """\
name: loaded
objective: loadfn:train
metrics: {score: max, cost: min}
search: {searcher: random, num_samples: 8, max_concurrent: 2, seed: 3, fail_fast: 0}
params:
  width: {type: int, low: 1, high: 1000}
"""


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    (root / "loadfn.py").write_text(FUNCTION)
    (root / "space.yaml").write_text(SPACE)
    log = root / "run.log"
    proc = harness.gatesearch("run", "space.yaml", "--output-dir", "out", "--quiet", log=log)
    code = proc.wait(timeout=300)
    text = " ".join(log.read_text().split())
    return root, code, text


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_a_finished_search_loads_into_dataframes_with_failed_trials_and_their_reason(searched):
    root, code, text = searched
    result = gatesearch.load_search(root / "out")  # the output folder holding one search
    assert result.failed >= 1, "seed 3 draws widths over 800: the test needs a failed trial"
    assert code == 3 and f"{result.failed} of 8 trials failed" in text, text[-2000:]  # the last line, exit 3
    df = result.trials_df
    assert len(df) == 8 and set(df["status"]) <= {"FINISHED", "FAILED"}
    finished = df[df.status == "FINISHED"]
    assert list(finished["score"].round(6)) == [round(w / 1000 + 0.02, 6) for w in finished["width"]]
    assert (df[df.status == "FAILED"]["reason"].str.contains("is too wide for this model")).all()
    front = result.front_df
    assert len(front) == len(result.front) >= 1 and set(front["run_id"]) == set(df[df.on_front]["run_id"])
    # the front is what the search printed: every finished trial is either on it or dominated by one of it
    for _, row in finished.iterrows():
        assert row.on_front or ((front.score >= row.score) & (front.cost <= row.cost)).any()
    assert result.hypervolume > 0 and result.status == "finished" and result.search_dir.startswith(str(root / "out"))
    import matplotlib.figure

    fig = result.plot()
    assert isinstance(fig, matplotlib.figure.Figure) and fig.axes[0].get_xlabel().startswith("cost")


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_the_same_search_from_its_parent_run_id(searched):
    root, _, _ = searched
    by_dir = gatesearch.load_search(root / "out")
    by_id = gatesearch.load_search(by_dir.parent_run_id, tracking_uri=f"sqlite:///{root / 'out' / 'mlflow.db'}")
    assert by_id.trials_df.drop(columns="on_front").equals(by_dir.trials_df.drop(columns="on_front"))
    assert by_id.hypervolume == pytest.approx(by_dir.hypervolume)


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_what_is_not_a_search_is_named(searched, tmp_path):
    root, _, _ = searched
    with pytest.raises(ValueError, match="no gatesearch search here"):
        gatesearch.load_search(tmp_path)
    with pytest.raises(ValueError, match="neither a folder nor an MLflow run id"):
        gatesearch.load_search("not-a-search")
    with pytest.raises(ValueError, match="not found in"):
        gatesearch.load_search("0" * 32, tracking_uri=f"sqlite:///{root / 'out' / 'mlflow.db'}")


def test_an_override_typo_gets_a_did_you_mean(tmp_path):
    sf = gatesearch.parse_space_file("objective: moe_digits\nfixed: {epochs: 1}\nparams: {}\n", str(tmp_path / "s.yaml"))
    with pytest.raises(ValueError, match="num_sample: unknown search setting.*did you mean 'num_samples'"):
        gatesearch.run_search(sf, overrides={"num_sample": 2}, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_the_python_api_example_of_the_docs_runs(tmp_path):
    example = ROOT / "docs" / "examples" / "python_api.py"
    done = subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=harness.env(), capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "front:" in done.stdout and (tmp_path / "front.png").exists()
