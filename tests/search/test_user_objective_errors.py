"""A user objective (``objective: package.module:attr``) that cannot be loaded: the error names the
module, the space file's ``objective:`` line, the exception and the user's own file:line, and says
the bug is in the user's code (never "please report it"); a missing attribute gets a did-you-mean."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from gatesearch.search.config.validate import validate_space_file
from gatesearch.spaces import SpaceError, parse_space_file
from tests.harness import BIN, env

HEADER = "from gatesearch.objectives.base import Objective\n"
BODY = "class DigitsObjective(Objective):\n    pass\n"

# (module source, the line that raises (1-based), the exception's type and message, words of the fix)
RAISING = {
    "runtime": (HEADER + "x = 1\nraise RuntimeError('no GPU found')\n" + BODY, 3, "RuntimeError: no GPU found", "fix "),
    "name": (HEADER + "\n\nWIDTH = WIDHT * 2\n" + BODY, 4, "NameError: name 'WIDHT' is not defined", "fix "),
    "syntax": (HEADER + "def f(:\n    pass\n" + BODY, 2, "SyntaxError: ", "fix "),
    "dependency": ("import numpyy_not_installed\n" + HEADER + BODY, 1,
                   "ModuleNotFoundError: No module named 'numpyy_not_installed'", "pip install 'numpyy_not_installed'"),
    # raised inside the standard library: located at the user's call, not in json/decoder.py
    "library": ("import json\n" + HEADER + "CONFIG = json.loads('{bad')\n" + BODY, 3, "JSONDecodeError: ", "fix "),
    "argparse": ("import argparse\n" + HEADER + "args = argparse.ArgumentParser().parse_args(['--nope'])\n" + BODY,
                 3, "SystemExit: 2", "fix "),
}


def _space(tmp_path: Path, monkeypatch, module_src: str | None, attr: str = "DigitsObjective") -> tuple[str, Path]:
    """A user module (a fresh name each time) and a space file whose ``objective:`` is line 3."""
    name = f"userobj_{uuid.uuid4().hex[:8]}"
    if module_src is not None:
        (tmp_path / f"{name}.py").write_text(module_src)
    monkeypatch.syspath_prepend(str(tmp_path))
    space = tmp_path / "space.yaml"
    space.write_text(f"# my search\nname: mine\nobjective: {name}:{attr}\nparams: {{}}\n")
    return name, space


def _error(space: Path) -> SpaceError:
    with pytest.raises(SpaceError) as info:
        validate_space_file(parse_space_file(space.read_text(), str(space)))
    return info.value


@pytest.mark.parametrize("kind", sorted(RAISING))
def test_a_module_that_raises_at_import_is_named_with_the_users_line(tmp_path, monkeypatch, kind):
    src, line, raised, fix = RAISING[kind]
    name, space = _space(tmp_path, monkeypatch, src)
    e = _error(space)
    assert (e.file, e.line, e.field) == (str(space), 3, "objective")  # the space file's line naming it
    assert f"importing module {name!r} raised {raised}" in e.message, e.message
    assert f"{tmp_path / (name + '.py')}:{line}" in e.message, e.message  # the user's file:line
    assert fix in e.fix and f"python -c 'import {name}'" in e.fix, e.fix
    assert ("not in gatesearch" in e.fix) == (kind != "dependency") and "report" not in str(e)


def test_a_constructor_that_raises_is_located_in_the_users_code(tmp_path, monkeypatch):
    src = HEADER + ("class DigitsObjective(Objective):\n    def __init__(self):\n"
                    "        raise ValueError('bad path')\n\n"
                    "    def run(self, config, *, report=None, device='cpu'):\n        return {}\n")
    name, space = _space(tmp_path, monkeypatch, src)
    e = _error(space)
    assert e.line == 3 and "DigitsObjective() raised ValueError: bad path" in e.message, e.message
    assert f"{tmp_path / (name + '.py')}:4" in e.message


def test_a_missing_attribute_is_named_with_a_did_you_mean(tmp_path, monkeypatch):
    src = HEADER + BODY + "def helper():\n    pass\n"
    name, space = _space(tmp_path, monkeypatch, src, attr="DigitsObjectiv")
    e = _error(space)
    assert e.line == 3, e
    assert (f"module {name!r} ({tmp_path / (name + '.py')}) has no attribute 'DigitsObjectiv' "
            f"(did you mean 'DigitsObjective'?)") in e.message, e.message
    assert "DigitsObjective" in e.fix and "importable" not in str(e)
    # no objective close to the name: the module's callables are the candidates
    name, space = _space(tmp_path, monkeypatch, src, attr="helpr")
    assert "(did you mean 'helper'?)" in _error(space).message


def test_a_module_that_is_not_there_says_how_to_make_it_importable(tmp_path, monkeypatch):
    name, space = _space(tmp_path, monkeypatch, None)
    e = _error(space)
    assert e.line == 3 and f"no module named {name!r}" in e.message and "PYTHONPATH" in e.fix, e


def test_cli_prints_one_located_error_not_an_unexpected_one(tmp_path):
    """The command line: exit code 2 and the located error, not "unexpected ... please report it"."""
    (tmp_path / "userobj_cli.py").write_text(RAISING["runtime"][0])
    (tmp_path / "space.yaml").write_text("# my search\nname: mine\nobjective: userobj_cli:DigitsObjective\n"
                                         "params: {}\n")
    e = env()
    e["PYTHONPATH"] = os.pathsep.join([str(tmp_path), e["PYTHONPATH"]])
    done = subprocess.run([str(BIN / "gatesearch"), "space", "validate", "space.yaml"], cwd=tmp_path, env=e,
                          capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "space.yaml:3: objective:" in out and "raised RuntimeError: no GPU found" in out, out
    assert f"{tmp_path / 'userobj_cli.py'}:3" in " ".join(out.split()), out  # rich may wrap the line
    assert "unexpected" not in out and "report" not in out and "Traceback" not in out, out
