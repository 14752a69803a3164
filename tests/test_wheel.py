"""A wheel works without the clone: ``python -m build`` makes it, it installs into a venv of its
own (its dependencies: the locked ones, from this test run's venv), and from a folder outside the
clone ``gatesearch examples`` copies the packaged example spaces and ``gatesearch run`` searches one."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests import harness

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # over 30 s in CI's make test: make test-slow runs it
def test_the_wheel_holds_every_package_and_runs_a_packaged_example_outside_the_clone(tmp_path):
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
                            str(ROOT)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    [wheel] = dist.glob("gatesearch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # every package folder of the source tree is in the wheel (a sub-package left out of
    # pyproject.toml would import in the clone and fail after `pip install`)
    for top, pkg in (("models", "models"), ("objectives", "objectives"), ("spaces", "spaces"),
                     ("search", "search"), ("gatesearch", "")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.relative_to(ROOT / top).as_posix()
            assert f"gatesearch/{pkg + '/' if pkg else ''}{rel}" in names, rel
    examples = [n for n in names if n.startswith("gatesearch/spaces/examples/") and n.endswith(".yaml")]
    assert len(examples) == len(list((ROOT / "spaces" / "examples").glob("*.yaml"))) >= 10

    venv = tmp_path / "venv"
    env = harness.env()
    # no PYTHONPATH: an earlier test of this process may have put the clone on it (the space file's
    # folder and the working directory are added for Ray's workers), and pip would then take the
    # clone's gatesearch.egg-info for an installed gatesearch
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120, env=env, cwd=tmp_path)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True, check=True, env=env,
                               cwd=tmp_path).stdout.strip())
    installed = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps", "--no-index", str(wheel)],
                               capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert installed.returncode == 0 and "Successfully installed gatesearch" in installed.stdout, \
        installed.stdout[-2000:] + installed.stderr[-3000:]
    # then the locked dependencies, from this venv (its own gatesearch is an editable install, which a
    # plain path entry does not activate: only the wheel's gatesearch is importable there)
    (site / "locked-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import gatesearch.search; print(gatesearch.search"
                            ".__file__)"], capture_output=True, text=True, cwd=work, env=env, timeout=120)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr  # the wheel's, not the clone's
    copied = subprocess.run([str(venv / "bin" / "gatesearch"), "examples"], capture_output=True, text=True, cwd=work,
                            env=env, timeout=120)
    assert copied.returncode == 0 and (work / "digits_moe.yaml").exists(), copied.stdout + copied.stderr
    text = (work / "digits_moe.yaml").read_text().replace("epochs: 12", "epochs: 1")
    (work / "digits_moe.yaml").write_text(text)
    ran = subprocess.run([str(venv / "bin" / "gatesearch"), "run", "digits_moe.yaml", "-n", "1", "--quiet"],
                         env=env, cwd=work, timeout=300, capture_output=True, text=True)
    out = ran.stdout + ran.stderr
    assert ran.returncode == 0, out[-3000:]
    assert "Pareto front of digits-moe (1 finished trials, 0 failed)" in " ".join(out.split())
