"""A user's gate in one file, named in the space file's ``plugins:``: imported before the space is
checked (``space validate`` knows it, its knobs and their bounds), errors at the ``plugins:`` entry
with the user's file:line, ``import_plugins`` idempotent, and the README's gate searched through
``gatesearch run`` on Ray workers with its trials labelled ``k1``."""

from __future__ import annotations

import re
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from gatesearch.models import GATES, gate_config_names, unregister_gate
from gatesearch.objectives import plugins
from gatesearch.objectives.base import UserImportError
from gatesearch.search.config.validate import validate_space_file
from gatesearch.spaces import SpaceError, parse_space_file
from tests import harness

README = Path(__file__).resolve().parents[2] / "README.md"


def _block(name: str, lang: str) -> str:
    m = re.search(rf"<!-- example: {name} -->\s*```{lang}\n(.*?)```", README.read_text(), re.S)
    assert m, f"README has no {name} example"
    return m.group(1)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch):
    """The README's one-file gate as a fresh module under a fresh gate name (this process keeps
    registries); yields (module name, gate name, knob name) and unregisters it afterwards."""
    module, gate = f"gates_{uuid.uuid4().hex[:8]}", f"mygate_{uuid.uuid4().hex[:6]}"
    knob = f"{gate}_temperature"
    source = _block("own-gate", "python").replace('"mygate"', repr(gate).replace("'", '"'))
    source = source.replace("mygate_temperature", knob)
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module, gate, knob
    unregister_gate(gate)
    plugins._IMPORTED.discard(module)
    sys.modules.pop(module, None)


def _space(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def _validate(path: Path):
    return validate_space_file(parse_space_file(path.read_text(), str(path)))


def test_validate_imports_the_plugin_before_the_schema_checks(tmp_path, plugin):
    module, gate, knob = plugin
    path = _space(tmp_path, f"""\
        objective: moe_digits
        plugins: [{module}]
        params:
          gate: {{type: categorical, choices: [{gate}, topk]}}
          {knob}: {{type: float, low: 0.5, high: 2.0, when: {{gate: [{gate}]}}}}
        """)
    objective, _ = _validate(path)
    assert gate in GATES and gate in gate_config_names()
    assert gate in objective.schema.rules["gate"].choices and objective.schema.rules[knob].high == 10.0
    full = objective.resolve({"gate": gate, knob: 2.0, "n_experts": 4})
    assert objective.run_label(full) == f"{gate} n4 k1"  # the config says top-1
    # the knob's bounds are the plugin's: past them is an error at the line
    path.write_text(path.read_text().replace("high: 2.0", "high: 20.0"))
    with pytest.raises(SpaceError) as info:
        _validate(path)
    assert info.value.line == 5 and info.value.field == f"params.{knob}.high", info.value


def test_without_plugins_the_gate_is_unknown_at_its_line(tmp_path):
    path = _space(tmp_path, """\
        objective: moe_digits
        params:
          gate: {type: categorical, choices: [topk, not_a_gate_anywhere]}
        """)
    with pytest.raises(SpaceError) as info:
        _validate(path)
    assert (info.value.line, info.value.field) == (3, "params.gate.choices.1"), info.value


def test_a_missing_plugin_is_named_at_its_entry_with_the_fix(tmp_path):
    missing = f"no_such_gates_{uuid.uuid4().hex[:6]}"
    path = _space(tmp_path, f"""\
        objective: moe_digits
        plugins:
          - {missing}
        params: {{}}
        """)
    with pytest.raises(SpaceError) as info:
        _validate(path)
    e = info.value
    assert (e.file, e.line, e.field) == (str(path), 3, "plugins.0"), e
    assert f"plugin {missing!r}: no module named {missing!r}" in e.message
    assert "make it importable" in e.fix and "PYTHONPATH" in e.fix


def test_a_plugin_that_raises_is_the_users_bug_at_their_line(tmp_path, monkeypatch):
    module = f"broken_gates_{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{module}.py").write_text("import os\n\nraise RuntimeError('no GPU found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _space(tmp_path, f"objective: moe_digits\nplugins: [{module}]\nparams: {{}}\n")
    with pytest.raises(SpaceError) as info:
        _validate(path)
    e = info.value
    assert (e.line, e.field) == (2, "plugins.0"), e
    assert f"importing module {module!r} raised RuntimeError: no GPU found" in e.message, e.message
    assert f"{tmp_path / (module + '.py')}:3" in e.message  # the user's file:line
    assert "not in gatesearch" in e.fix and "report" not in str(e)


def test_import_plugins_is_idempotent(tmp_path, monkeypatch):
    module = f"counting_{uuid.uuid4().hex[:6]}"
    (tmp_path / f"{module}.py").write_text("import builtins\nbuiltins.PLUGIN_IMPORTS = "
                                           "getattr(builtins, 'PLUGIN_IMPORTS', 0) + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    try:
        before = getattr(builtins, "PLUGIN_IMPORTS", 0)
        plugins.import_plugins([module])
        sys.modules.pop(module)  # even a module dropped from sys.modules is not imported again
        plugins.import_plugins([module, module])
        assert builtins.PLUGIN_IMPORTS == before + 1
        with pytest.raises(UserImportError, match="not a module name"):
            plugins.import_plugins(["my-gates"])
    finally:
        plugins._IMPORTED.discard(module)


def test_the_readme_space_validates_through_the_cli(tmp_path: Path):
    (tmp_path / "mygates.py").write_text(_block("own-gate", "python"))
    (tmp_path / "my_gate_space.yaml").write_text(_block("own-gate-space", "yaml"))
    log = tmp_path / "validate.log"
    proc = harness.gatesearch("space", "validate", "my_gate_space.yaml", log=log)
    assert proc.wait(timeout=120) == 0, harness.tail(log)
    text = log.read_text()
    assert "mygate_temperature" in text and "mygate" in text, text[-3000:]


SEARCH = """\
name: plugin-gate
objective: moe_digits
plugins: [mygates]
search: {searcher: random, num_samples: 2, max_concurrent: 2, seed: 0}
fixed: {epochs: 1, n_experts: 4, k: 2, expert_hidden: 8, expert_out: 8, mygate_temperature: 0.5}
params:
  gate: {type: categorical, choices: [mygate, topk]}
"""


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_a_plugin_gate_is_searched_on_ray_workers_with_its_k(tmp_path: Path):
    """Two configurations (the space's only two: deduplication makes the 2 trials both gates),
    through the CLI, as a user would: the workers import ``mygates`` themselves."""
    (tmp_path / "mygates.py").write_text(_block("own-gate", "python"))
    (tmp_path / "space.yaml").write_text(SEARCH)
    log = tmp_path / "run.log"
    text = " ".join(harness.gatesearch_ok("run", "space.yaml", log=log).split())
    assert "Pareto front of plugin-gate (2 finished trials, 0 failed)" in text, text[-3000:]

    from mlflow.tracking import MlflowClient

    from gatesearch.search.tracking.tracker import Tracker

    uri = f"sqlite:///{tmp_path / 'gatesearch-runs' / 'mlflow.db'}"
    [(parent, _)] = Tracker(uri, "plugin-gate").searches()
    children = Tracker(uri, "plugin-gate").children(parent)
    assert sorted(c.params["gate"] for c in children) == ["mygate", "topk"]
    client = MlflowClient(uri)
    for c in children:
        assert c.status == "FINISHED"
        k = "1" if c.params["gate"] == "mygate" else "2"
        assert c.params["k_effective"] == k, c.params
        assert re.fullmatch(rf"{c.params['gate']} n4 k{k} #\d", client.get_run(c.run_id).info.run_name)
        assert ("mygate_temperature" in c.params) == (c.params["gate"] == "mygate")
