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
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert len(contracts) >= 8  # the four layers of the namespace and the four of search/'s rooms
    assert f"{len(contracts)} kept, 0 broken" in done.stdout, done.stdout


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
    assert users["mlflow"] == {"search/tracking/tracker.py"}


def _imported_roots(f: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(f.read_text())):
        mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
        found.update(m.split(".")[0] for m in mods)
    return found


def test_search_is_in_rooms_each_with_its_job_and_no_file_over_350_lines():
    """search/ holds rooms (sub-packages whose __init__ states their job) and no loose modules; no file is
    over 350 lines; typer and rich are the UI's alone."""
    search = ROOT / "search"
    loose = sorted(f.name for f in search.glob("*.py") if f.name != "__init__.py")
    assert not loose, f"modules outside a room: {loose}"
    rooms = sorted(d for d in search.iterdir() if d.is_dir() and (d / "__init__.py").exists())
    assert {d.name for d in rooms} >= {"config", "searchers", "schedulers", "loop", "front", "tracking", "ray",
                                       "lifecycle", "system", "ui"}
    for d in rooms:
        doc = ast.get_docstring(ast.parse((d / "__init__.py").read_text()))
        assert doc and len(doc) > 40, f"search/{d.name}/__init__.py states no job"
    long = {str(f.relative_to(ROOT)): n for f in search.rglob("*.py") if (n := len(f.read_text().splitlines())) > 350}
    assert not long, f"over 350 lines: {long}"
    ui_only = {str(f.relative_to(ROOT)) for f in ROOT.glob("*/**/*.py")
               if f.parts[len(ROOT.parts)] in ALLOWED and _imported_roots(f) & {"typer", "rich"}}
    assert ui_only and all(f.startswith("search/ui/") for f in ui_only), ui_only


def test_a_search_saved_before_the_rooms_still_unpickles():
    """Pickles of the flat layout name ``gatesearch.search.moasha`` and the like (a saved searcher,
    scheduler and settings): the old names import the new modules, and the three old modules whose
    names are rooms now resolve their attributes."""
    import importlib
    import pickle

    from gatesearch.search import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    for module, name, where in [("gatesearch.search.moasha", "MOASHA", "gatesearch.search.schedulers.moasha"),
                                ("gatesearch.search.searchers", "CoreRequest", "gatesearch.search.searchers.registry"),
                                ("gatesearch.search.searchers", "OptunaCore", "gatesearch.search.searchers.optuna_core"),
                                ("gatesearch.search.front", "LiveFront", "gatesearch.search.front.live"),
                                ("gatesearch.search.recorded", "RecordedCore", "gatesearch.search.searchers.recorded"),
                                ("gatesearch.search.dedup", "ConfigKey", "gatesearch.search.loop.dedup")]:
        cls = pickle.loads(f"c{module}\n{name}\n.".encode())  # protocol 0: a global by module and name
        assert cls.__module__ == where and cls.__name__ == name
    from gatesearch.search.config.settings import SearchSettings

    saved = pickle.dumps(SearchSettings(num_samples=7), protocol=0).replace(
        b"gatesearch.search.config.settings", b"gatesearch.search.settings")
    assert pickle.loads(saved) == SearchSettings(num_samples=7)
