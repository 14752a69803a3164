"""The distribution installs under one namespace, ``gatesearch.*``: a user's own ``models``,
``search``, ``spaces`` and ``objectives`` packages never collide with ours."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.harness import BIN, env

USER_MODELS = '''
"""The user's own `models` package (most ML repositories have one)."""
WIDTH = 24

class EarlyExitConfig:  # the very name whose import used to fail inside gatesearch
    pass
'''

USER_OBJECTIVE = '''
"""A user objective that imports from the user's own `models` package."""
from models import WIDTH, EarlyExitConfig  # the user's, not ours
from search import LABEL                   # the user's `search` package

from gatesearch.objectives.data import load_digits
from gatesearch.objectives.moe_classification import MOE_DEFAULTS, MoEClassification


class UserDigits(MoEClassification):
    defaults = {**MOE_DEFAULTS, "expert_hidden": WIDTH}

    def __init__(self):
        super().__init__("userobj:UserDigits", lambda seed: load_digits(seed=seed))
        assert LABEL == "user-search" and EarlyExitConfig.__module__ == "models"
'''

SPACE = """
objective: userobj:UserDigits
search: {num_samples: 2, max_concurrent: 2, seed: 0}
fixed: {epochs: 1}
params:
  gate: {type: categorical, choices: [topk, hash]}
"""


def test_public_api_is_lazy_and_names_resolve():
    code = ("import sys, gatesearch; assert 'torch' not in sys.modules and 'ray' not in sys.modules; "
            "from gatesearch import Objective, run_search, MoELayer, Space, register_objective; "
            "assert Objective.__module__ == 'gatesearch.objectives.base'; "
            "assert run_search.__module__ == 'gatesearch.search.lifecycle.runner'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_search_with_user_packages_named_like_ours(tmp_path: Path):
    user = tmp_path / "userproj"
    for pkg, body in {"models": USER_MODELS, "search": 'LABEL = "user-search"\n', "spaces": "", "objectives": ""}.items():
        (user / pkg).mkdir(parents=True)
        (user / pkg / "__init__.py").write_text(textwrap.dedent(body))
    (user / "userobj.py").write_text(textwrap.dedent(USER_OBJECTIVE))
    (user / "space.yaml").write_text(SPACE)
    e = env(PYTHONPATH=str(user))  # the README's recipe for a custom objective
    done = subprocess.run([str(BIN / "gatesearch"), "run", "space.yaml", "--output-dir", str(tmp_path / "out")],
                          cwd=user, env=e, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "2 finished trials, 0 failed" in out
    assert "#/experiments/" in out and "/runs/" in out  # the deep link to the parent run
    assert "optuna-dashboard sqlite:///" in out and (tmp_path / "out" / "optuna.db").exists()
    assert " finished: accuracy=" in out and "search ended: 2/2 finished" in out  # progress, plain lines
    assert "ImportError" not in out and "Traceback" not in out
