"""Built-in gates are found by a scan of ``models/gates`` (nothing to list): config modules by
their ``_config`` name, gate modules by a top-level ``@register_gate(...)``, a one-file gate too;
reading the configs (what ``space validate`` does) imports no PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from gatesearch.models import GATES
from gatesearch.models.gates.registry import GateModules, builtin_gate_modules, gate_config_names, scan_gate_modules
from tests.harness import ROOT

#: the built-in gates, from the files on disk (a gate with its torch-free ``<gate>_config.py``; the local
#: search's config is not a gate): adding a gate adds its files, never a line here
GATES_DIR = Path(__file__).resolve().parents[2] / "models" / "gates"
BUILTIN = tuple(sorted(p.stem.removesuffix("_config") for p in GATES_DIR.glob("*_config.py")
                       if p.stem != "local_search_config"))

ONE_FILE_GATE = '''\
"""A gate in one file: config, gate, registration."""
from dataclasses import dataclass

from gatesearch.models.gates.base import Gate, register_gate


@dataclass(frozen=True)
class {cls}Config:
    def experts_per_row(self, n_experts: int) -> int:
        return 1


@register_gate("{name}", {cls}Config)
class {cls}(Gate):
    pass
'''


def test_every_builtin_gate_and_config_is_discovered():
    assert len(BUILTIN) >= 6 and {"topk", "hash", "comet"} <= set(BUILTIN)
    found = builtin_gate_modules()
    assert found.gates == BUILTIN
    assert set(found.configs) == {f"{g}_config" for g in BUILTIN} | {"local_search_config"}
    assert found.for_configs == found.configs  # every built-in has a torch-free config module
    assert set(BUILTIN) <= set(gate_config_names()) and set(BUILTIN) <= set(GATES)


def test_the_scan_reads_modules_without_importing_them(tmp_path: Path):
    pkg = tmp_path / f"gates_{uuid.uuid4().hex[:8]}"
    pkg.mkdir()
    files = {
        "__init__.py": "",
        "two_config.py": "raise RuntimeError('a config module is never imported by the scan')\n",
        "two.py": "from x import register_gate\n\n@register_gate('two', C)\nclass Two:\n    pass\n",
        "one.py": ONE_FILE_GATE.format(cls="One", name="one"),
        "called.py": "import base\n\nbase.register_gate('called', C)(G)\n",
        # infrastructure: defines register_gate and shows it in a docstring, registers nothing
        "base.py": textwrap.dedent('''\
            """Use it so:

                @register_gate("mine", MyConfig)
                class Mine(Gate): ...
            """
            def register_gate(name, config_type):
                return lambda cls: cls
            '''),
        "helper.py": "def register_gate_config(name, t):\n    return t\nregister_gate_config('x', int)\n",
        "_private.py": "@register_gate('p', C)\nclass P:\n    pass\n",
        "broken.py": "@register_gate('b', C)\nclass B(:\n",  # importing it shows the syntax error
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    (pkg / "sub").mkdir()
    (pkg / "sub" / "__init__.py").write_text("@register_gate('s', C)\nclass S:\n    pass\n")

    found = scan_gate_modules(pkg)
    assert found == GateModules(configs=("two_config",), gates=("broken", "called", "one", "two"))
    # what reading the configs imports: config modules, then gates without a config sibling
    assert found.for_configs == ("two_config", "broken", "called", "one")


def test_a_discovered_one_file_gate_registers_its_config_and_gate(tmp_path: Path, monkeypatch):
    from gatesearch.models import unregister_gate

    pkg, name = f"gates_{uuid.uuid4().hex[:8]}", f"onefile_{uuid.uuid4().hex[:6]}"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / pkg / "mine.py").write_text(ONE_FILE_GATE.format(cls="Mine", name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = scan_gate_modules(tmp_path / pkg)
    assert found.for_configs == ("mine",)
    import importlib

    try:
        for mod in found.for_configs:
            importlib.import_module(f"{pkg}.{mod}")
        assert name in gate_config_names() and name in GATES
    finally:
        unregister_gate(name)


def test_reading_the_gate_configs_imports_no_torch():
    """``space validate`` of a MoE space reads every gate's knobs from the torch-free configs."""
    code = ("import json, sys\n"
            "from gatesearch.search.ui.cli import main\n"
            "sys.argv = ['gatesearch', 'space', 'validate', 'spaces/examples/digits_moe.yaml']\n"
            "try:\n    main()\n    code = 0\nexcept SystemExit as e:\n    code = e.code\n"
            "from gatesearch.models.gates.registry import gate_config_names\n"
            "print('PROBE ' + json.dumps({'code': code, 'gates': gate_config_names(),\n"
            "      'torch': 'torch' in sys.modules}))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    probe = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    assert probe, done.stderr[-3000:]
    out = json.loads(probe[-1][len("PROBE "):])
    assert out["code"] == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert set(BUILTIN) <= set(out["gates"]) and out["torch"] is False
