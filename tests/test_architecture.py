"""The dependency direction models/spaces <- objectives <- search is enforced."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {"models": set(), "spaces": set(), "objectives": {"models"}, "search": {"models", "spaces", "objectives"}}


def test_import_linter_contracts_are_kept():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "lint_imports.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


def _our_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
        for n in names:
            parts = n.split(".")
            if parts[0] in ALLOWED:
                bad_import = f"bare `{n}` (use gatesearch.{n})"
                found.add(bad_import)
            elif parts[0] == "gatesearch" and len(parts) > 1 and parts[1] in ALLOWED:
                found.add(parts[1])
            elif n == "gatesearch":  # `from gatesearch import spaces`
                found.update(a.name for a in node.names if a.name in ALLOWED)
    return found


def test_every_module_respects_the_layering():
    """Independent of import-linter: parse every module and check its top-level packages."""
    bad = []
    for pkg, allowed in ALLOWED.items():
        for f in (ROOT / pkg).rglob("*.py"):
            illegal = _our_imports(f) - allowed - {pkg}
            if illegal:
                bad.append(f"{f.relative_to(ROOT)} imports {sorted(illegal)}")
    assert not bad, bad


def test_ray_and_mlflow_are_each_imported_by_exactly_one_module():
    users = {"ray": set(), "mlflow": set()}
    for pkg in ALLOWED:
        for f in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(f.read_text())
            for node in ast.walk(tree):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
                for m in mods:
                    if m.split(".")[0] in users:
                        users[m.split(".")[0]].add(str(f.relative_to(ROOT)))
    assert users["ray"] and all(f.startswith("search/ray/") for f in users["ray"]), users["ray"]
    assert users["mlflow"] == {"search/tracking.py"}
