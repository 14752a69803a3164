"""Run import-linter's contracts (pyproject.toml) on the installed layout.

The four top-level folders install as ``gatesearch.models`` etc. through a package-dir
mapping, which import-linter cannot follow (it walks the root package's folder on disk).
So the package is staged as it would be installed (``<tmp>/gatesearch/{models,...}``) and
linted there. Exit status: import-linter's (0 = every contract kept).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("models", "spaces", "objectives", "search")


def stage(dest: Path) -> Path:
    """Copy the package into ``dest/gatesearch`` with the installed layout; return that folder."""
    pkg = dest / "gatesearch"
    shutil.copytree(ROOT / "gatesearch", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for name in FOLDERS:
        shutil.copytree(ROOT / name, pkg / name, ignore=shutil.ignore_patterns("__pycache__", "examples"))
    return pkg


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gs-lint") as tmp:
        stage(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        lint = Path(sys.executable).with_name("lint-imports")
        return subprocess.call([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
