"""The README's "Your own model" section, run verbatim: its `my_model.py` and `my_space.yaml` are
written to a fresh folder and searched with the CLI, as a new user would (a real local Ray instance,
a real SQLite MLflow store). The front shows the searched parameters, child runs are named by them,
every finished child has each epoch once, and the reported MACs are the whole model's."""

import re
from pathlib import Path

from mlflow.tracking import MlflowClient

from gatesearch.search.tracking.tracker import Tracker
from tests import harness

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(name: str, lang: str) -> str:
    m = re.search(rf"<!-- example: {name} -->\s*```{lang}\n(.*?)```", README.read_text(), re.S)
    assert m, f"README has no {name} example"
    return m.group(1)


# over 30 s (80 s in CI), kept in make test: the README's own-model path is the product's first promise
def test_readme_own_model_runs_as_written(tmp_path: Path):
    (tmp_path / "my_model.py").write_text(_block("own-model", "python"))
    space = _block("own-model-space", "yaml")
    (tmp_path / "my_space.yaml").write_text(space)
    epochs = int(re.search(r"epochs: (\d+)", space).group(1))
    # the README's command; fewer trials than its 8 to keep the suite short
    text = harness.gatesearch_ok("run", "my_space.yaml", "--num-samples", "4", log=tmp_path / "run.log")
    assert "Pareto front of my-digits-moe (4 finished trials, 0 failed)" in " ".join(text.split()), text[-3000:]
    # one hypervolume per search: the live progress ends on the number printed with the front
    live = float(re.findall(r"search ended: .*hypervolume ([0-9,.e+-]+)", text)[-1].replace(",", ""))
    final = float(re.search(r"^hypervolume ([0-9,.]+) \(reference point", text, re.M).group(1).replace(",", ""))
    assert abs(live - final) <= 1e-5 * max(1.0, final), (live, final)
    header = next(line for line in text.splitlines() if "macs_per_sample" in line and "trial" in line)
    for column in ("d_model", "n_experts", "k", "lr", "accuracy"):
        assert column in header, header

    # `gatesearch pareto` reads the front back from MLflow, with the searched parameters as columns
    pareto_log = tmp_path / "pareto.log"
    assert harness.gatesearch("pareto", log=pareto_log).wait(timeout=120) == 0, harness.tail(pareto_log)
    header = next(line for line in pareto_log.read_text().splitlines() if "macs_per_sample" in line)
    assert "d_model" in header and "lr" in header, header

    uri = f"sqlite:///{tmp_path / 'gatesearch-runs' / 'mlflow.db'}"
    tracker = Tracker(uri, "my-digits-moe")
    [(parent, params)] = tracker.searches()
    assert params["objectives"] == "accuracy:max,macs_per_sample:min"
    children = tracker.children(parent)
    assert len(children) == 4 and all(c.status == "FINISHED" for c in children)
    client = MlflowClient(uri)
    for c in children:
        name = client.get_run(c.run_id).info.run_name
        assert re.fullmatch(r"d_model=\d+ n_experts=\d+ k=\d lr=[0-9.e-]+ #\d", name), name
        steps = [step for step, _ in tracker.metric_history(c.run_id, "accuracy")]
        assert sorted(steps) == list(range(1, epochs + 1)), steps
        # whole-model compute: embedding + attention + head alone exceed the MoE layer's experts
        d = int(c.params["d_model"])
        tokens_dense = 8 * d + 4 * d * d + 2 * 8 * d  # per token: embed, q/k/v/out, attention over 8 rows
        assert c.metrics["macs_per_sample"] > 8 * tokens_dense, (c.params, c.metrics)
