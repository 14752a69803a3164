"""A moved output folder opens again after `gatesearch relocate` (MLflow stores absolute
artifact locations)."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from gatesearch.search.lifecycle.manifest import Manifest
from gatesearch.search.lifecycle.runner import run_search
from gatesearch.search.ui.cli import app
from gatesearch.spaces import parse_space_file

SPACE = ("name: moved\nobjective: moe_digits\nsearch: {num_samples: 2, max_concurrent: 2, seed: 0}\n"
         "fixed: {epochs: 1}\nparams:\n  gate: {type: categorical, choices: [topk, hash]}\n")


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_a_moved_output_folder_opens_after_relocate(ray_session, tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    result = run_search(parse_space_file(SPACE, str(tmp_path / "s.yaml")), output_dir=before)
    before.rename(after)  # the folder moved: the old path no longer exists
    uri = f"sqlite:///{after / 'mlflow.db'}"
    with pytest.raises(Exception):  # noqa: B017 - MLflow's error for a missing artifact root
        MlflowClient(uri).download_artifacts(result.parent_run_id, "pareto_front.json", str(tmp_path))
    res = CliRunner().invoke(app, ["relocate", str(after)])
    assert res.exit_code == 0, res.output
    assert f"re-rooted {before} -> {after}" in " ".join(res.output.split())
    local = MlflowClient(uri).download_artifacts(result.parent_run_id, "pareto_front.json", str(tmp_path))
    assert {r["run_id"] for r in json.loads(open(local).read())["front"]} == {r["run_id"] for r in result.front}
    for run in MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("moved").experiment_id]):
        assert run.info.artifact_uri.startswith(f"file://{after}/")
    [manifest_dir] = (after / "ray").iterdir()
    assert Manifest.read(manifest_dir).output_dir == str(after)
    res = CliRunner().invoke(app, ["pareto", "--output-dir", str(after)])
    assert res.exit_code == 0 and result.front[0]["trial"] in res.output
    assert CliRunner().invoke(app, ["relocate", str(after)]).exit_code == 0  # idempotent
