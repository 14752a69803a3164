"""The public API is ``gatesearch`` itself: every name of ``__all__`` resolves (lazily) to the
object its module defines, ``from gatesearch import *`` brings them all, and ``import gatesearch``
alone loads no heavy dependency (README: "``import gatesearch`` loads no torch, Ray or MLflow").

Each check runs in a fresh interpreter, since this test session has imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "mlflow", "optuna", "nevergrad", "matplotlib", "pandas", "sklearn")


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def test_import_gatesearch_loads_no_heavy_dependency():
    loaded = json.loads(_python(f"import sys, json, gatesearch; print(json.dumps([m for m in {list(HEAVY)!r} "
                                f"if m in sys.modules]))"))
    assert loaded == []


def test_star_import_brings_every_public_name_resolved():
    code = ("import json\nfrom gatesearch import *\nimport gatesearch\n"
            "names = gatesearch.__all__\n"
            "bound = {n: n in globals() and globals()[n] is not None for n in names}\n"
            "print(json.dumps({'names': names, 'bound': bound}))")
    out = json.loads(_python(code))
    assert len(out["names"]) >= 30, out["names"]
    assert [n for n, ok in out["bound"].items() if not ok] == []


def test_every_public_name_is_the_object_its_module_defines():
    import importlib

    import gatesearch

    assert gatesearch.__all__ == sorted(set(gatesearch.__all__)), "duplicates or unsorted"
    for name in gatesearch.__all__:
        value = getattr(gatesearch, name)
        assert value is not None, name
        module = importlib.import_module(gatesearch._API[name])
        assert getattr(module, name) is value, name  # not a copy or a stub
        assert name in dir(gatesearch)


@pytest.mark.parametrize("name", ["run_search", "Objective", "EpochReports", "FunctionObjective", "count_macs",
                                  "MoEFeedForward", "load_space_file", "SearchSettings"])
def test_the_names_the_readme_uses_are_public(name):
    import gatesearch

    assert name in gatesearch.__all__


def test_an_unknown_name_is_an_attribute_error():
    import gatesearch

    with pytest.raises(AttributeError, match="no attribute 'run_serch'"):
        gatesearch.run_serch  # noqa: B018
    with pytest.raises(ImportError):
        exec("from gatesearch import run_serch", {})


def test_the_version_is_the_installed_distributions():
    import importlib.metadata

    import gatesearch

    assert gatesearch.__version__ == importlib.metadata.version("gatesearch")
