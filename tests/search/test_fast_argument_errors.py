"""A wrong argument is one clear error and exit code 2, found before anything heavy is imported:
the CLI's ``main()`` runs in a fresh interpreter, which then says which modules it loaded
(timing belongs in benchmarks; "no Ray, no MLflow, no torch" is what makes it fast, and what can
be asserted). README: "``gatesearch --help``, ``space validate`` and ``space sample`` import no
torch, Ray, MLflow or Nevergrad"; a bad option or path of ``run``/``resume``/``pareto`` is
rejected before the search imports them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("ray", "mlflow", "torch", "optuna", "nevergrad")

# the user's function: importing it imports nothing heavy either
MODULE = "def train(config, report):\n    report({'score': config['x'], 'cost': 1.0})\n"
SPACE = """\
name: fast-errors
objective: fastmod:train
metrics: {score: max, cost: min}
search: {searcher: random, num_samples: 2}
fixed: {epochs: 1}
params:
  x: {type: float, low: 0, high: 1}
"""

PROBE = """\
import json, sys
from gatesearch.search.ui.cli import main
sys.argv = ["gatesearch", *json.loads(sys.argv[1])]
try:
    main()
    code = 0
except SystemExit as e:
    code = e.code
print("PROBE " + json.dumps({"code": code, "loaded": [m for m in HEAVY if m in sys.modules]}))
""".replace("HEAVY", repr(list(HEAVY)))


def _cli(tmp_path: Path, *args: str) -> tuple[int, list[str], str, str]:
    """Exit code, heavy modules loaded, stdout (without the probe's line) and stderr of the CLI."""
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(list(args))], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    lines = done.stdout.splitlines()
    probe = [line for line in lines if line.startswith("PROBE ")]
    assert probe, f"the CLI did not return:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    out = json.loads(probe[-1][len("PROBE "):])
    return out["code"], out["loaded"], "\n".join(line for line in lines if not line.startswith("PROBE ")), done.stderr


@pytest.fixture
def space(tmp_path: Path) -> Path:
    (tmp_path / "fastmod.py").write_text(MODULE)
    (tmp_path / "space.yaml").write_text(SPACE)
    return tmp_path / "space.yaml"


# (arguments, words the one error line must hold)
CASES = {
    "num-samples 0": (["run", "space.yaml", "--num-samples", "0"], ["--num-samples", "must be >= 1", "got 0"]),
    "max-concurrent 0": (["run", "space.yaml", "--max-concurrent", "0"], ["--max-concurrent", "got 0"]),
    "seed -1": (["run", "space.yaml", "--seed", "-1"], ["--seed", "got -1"]),
    "unknown searcher": (["run", "space.yaml", "--searcher", "tpx"], ["--searcher", "'tpx'", "did you mean 'tpe'"]),
    "missing space file": (["run", "missing.yaml"], ["missing.yaml", "file not found"]),
    "missing search dir": (["resume", "/no/such/dir"], ["/no/such/dir", "no such directory"]),
    "pareto without store": (["pareto", "--output-dir", "/no/such/dir"], ["/no/such/dir/mlflow.db",
                                                                          "no tracking store"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_argument_is_one_error_exit_2_before_any_heavy_import(tmp_path, space, case):
    args, words = CASES[case]
    code, loaded, out, err = _cli(tmp_path, *args)
    assert code == 2, (code, out, err)
    assert loaded == [], f"{case}: imported {loaded} before rejecting the argument"
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1, err
    assert "Traceback" not in err and "unexpected" not in err, err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "gatesearch-runs").exists()  # nothing written


@pytest.mark.parametrize("args", [["--help"], ["space", "validate", "space.yaml"], ["space", "sample", "space.yaml"]])
def test_help_validate_and_sample_import_nothing_heavy(tmp_path, space, args):
    code, loaded, out, err = _cli(tmp_path, *args)
    assert code == 0, (out, err)
    assert loaded == [], f"{args}: imported {loaded}"
    if args[0] == "space":
        assert "fast-errors" not in err and ("ok" in out or '"x"' in out), out


def test_the_probe_sees_a_heavy_import(tmp_path):
    """The checks above can fail: past the cheap checks, `pareto` opens the store with MLflow, and
    the probe sees it."""
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mlflow.db").touch()  # a store exists, with no experiment in it
    code, loaded, out, err = _cli(tmp_path, "pareto", "--output-dir", "runs")
    assert code == 2 and "not found" in err, (code, err)
    assert "mlflow" in loaded, loaded
