"""The docs teach only what runs: every example in README.md and docs/**/*.md is checked, the site
builds with ``mkdocs build --strict`` (``make docs``), and the README stays short.

The marker convention. A fenced ``python`` or ``yaml`` block must have, on the line before its fence
(blank lines between are allowed), one of:

- ``<!-- example: NAME -->``: a runnable example, checked here. A ``yaml`` block is a space file: it is
  written as ``NAME.yaml`` and validated (``validate_space_file(parse_space_file(text, path))``, which
  imports the objective and plugins it names). A ``python`` block whose first line is a docstring
  starting with three quotes and ``FILE.py:`` is a module: it is written as ``FILE.py`` beside the page's space files and
  imported. Any other ``python`` block is a program, run as a script in the page's folder (where the
  page's modules are) with a time limit. Flags after the name: ``compile-only`` (a program only
  compiled: it needs services or minutes), ``try`` (a space file also run for one epoch of one trial
  by ``gatesearch.search.dry_run``, as ``gatesearch try`` does).
- ``<!-- fragment -->``: a part of a file, shown for reading; not run.

A line ``--8<-- "path"`` in a block (pymdownx.snippets) stands for that file, relative to the
repository. Examples of one page share one temporary folder. Two blocks with the same example name
(a README example repeated in the docs) must be identical. README.md keeps the markers that
``tests/test_readme_own_model.py``, ``tests/search/test_gate_plugins.py`` and
``tests/models/test_moe_ffn.py`` read.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 200
#: seconds for one page's modules and space files, and for one program
TIMEOUT = 240

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*$")
EXAMPLE = re.compile(r"^\s*<!--\s*example:\s*(?P<name>[\w.-]+)(?P<flags>(?:\s+[\w-]+)*)\s*-->\s*$")
FRAGMENT = re.compile(r"^\s*<!--\s*fragment\s*-->\s*$")
SNIPPET = re.compile(r'^[ \t]*--8<--[ \t]+"(?P<path>[^"]+)"[ \t]*$', re.M)
MODULE = re.compile(r'^"""(?P<file>[A-Za-z_]\w*\.py):')
FLAGS = {"compile-only", "try"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str  # "example", "fragment" or ""
    name: str = ""
    flags: frozenset[str] = frozenset()

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def module(self) -> str | None:
        m = MODULE.match(self.code)
        return m["file"] if self.lang == "python" and m else None

    def source(self) -> str:
        """The code with snippet lines replaced by the files they include."""
        return SNIPPET.sub(lambda m: (ROOT / m["path"]).read_text(encoding="utf-8"), self.code)


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with the marker before it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m["indent"], m["fence"], m["lang"].lower()
        end = i + 1
        while end < len(lines) and not re.match(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        body = "\n".join(line[len(indent):] if line.startswith(indent) else line for line in lines[i + 1:end])
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        before = lines[j] if j >= 0 else ""
        example, fragment = EXAMPLE.match(before), FRAGMENT.match(before)
        out.append(Block(page, i + 1, lang, body + "\n",
                         "example" if example else "fragment" if fragment else "",
                         example["name"] if example else "",
                         frozenset(example["flags"].split()) if example else frozenset()))
        i = end + 1
    return out


ALL = [b for page in PAGES for b in blocks(page)]
CHECKED = [b for b in ALL if b.lang in ("python", "yaml")]
EXAMPLES = [b for b in CHECKED if b.marker == "example"]
PAGES_WITH_EXAMPLES = sorted({b.page for b in EXAMPLES})


def _env() -> dict[str, str]:
    # one torch thread (the suite runs in two workers on two cores); the checkout's package as installed
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def test_every_python_and_yaml_block_is_marked():
    unmarked = [b.where for b in CHECKED if not b.marker]
    assert not unmarked, ("these python/yaml blocks carry no marker; put `<!-- example: NAME -->` (checked) or "
                          f"`<!-- fragment -->` (a part, not run) on the line before the fence: {unmarked}")
    bad = [f"{b.where}: {sorted(b.flags - FLAGS)}" for b in EXAMPLES if b.flags - FLAGS]
    assert not bad, f"unknown example flags (known: {sorted(FLAGS)}): {bad}"
    misplaced = [b.where for b in EXAMPLES if b.lang == "yaml" and "compile-only" in b.flags
                 or b.lang == "python" and "try" in b.flags]
    assert not misplaced, f"compile-only is for python blocks and try for space files: {misplaced}"


def test_examples_of_one_name_are_identical_wherever_they_are_shown():
    seen: dict[str, Block] = {}
    for b in EXAMPLES:
        first = seen.setdefault(b.name, b)
        assert first.code == b.code and first.lang == b.lang, (
            f"example {b.name!r} differs between {first.where} and {b.where}: copy one to the other")


def test_the_readme_examples_other_tests_read_are_there():
    names = {b.name for b in EXAMPLES if b.page.name == "README.md"}
    assert {"own-model", "own-model-space", "own-gate", "own-gate-space", "moe-ffn"} <= names, names


def test_snippets_name_files_that_exist():
    for b in ALL:
        for m in SNIPPET.finditer(b.code):
            assert (ROOT / m["path"]).is_file(), f"{b.where}: snippet {m['path']} does not exist"


CHECKER = r'''
import json, sys, traceback
sys.path.insert(0, ".")
from gatesearch import parse_space_file
from gatesearch.search.validate import validate_space_file
failures = []
for kind, name, path, where, flags in json.loads(sys.argv[1]):
    try:
        if kind == "module":
            __import__(path[:-3])
        else:
            sf = parse_space_file(open(path, encoding="utf-8").read(), path)
            validate_space_file(sf)
            if "try" in flags:
                from gatesearch.search.dry_run import dry_run
                run = dry_run(sf, seed=0, epochs=1)
                if not run.ok:
                    raise RuntimeError(f"gatesearch try: {run.error} {run.where}")
        print(f"ok {where} {kind} {name}", flush=True)
    except BaseException as e:
        failures.append(f"{where} ({kind} {name}): {type(e).__name__}: {e}")
        traceback.print_exc()
print(json.dumps(failures))
sys.exit(1 if failures else 0)
'''


@pytest.mark.parametrize("page", PAGES_WITH_EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_example_of_the_page_runs_or_validates(page: Path, tmp_path: Path):
    """The page's modules are imported and its space files validated (one process, in the order shown);
    then each program runs on its own, in the same folder."""
    mine = [b for b in EXAMPLES if b.page == page]
    checks, programs, failures = [], [], []
    for b in mine:
        if b.lang == "python" and b.module:
            (tmp_path / b.module).write_text(b.source(), encoding="utf-8")
            checks.append(("module", b.name, b.module, b.where, sorted(b.flags)))
        elif b.lang == "yaml":
            (tmp_path / f"{b.name}.yaml").write_text(b.source(), encoding="utf-8")
            checks.append(("space", b.name, f"{b.name}.yaml", b.where, sorted(b.flags)))
        else:
            programs.append(b)
    if checks:
        proc = subprocess.run([sys.executable, "-c", CHECKER, json.dumps(checks)], cwd=tmp_path, env=_env(),
                              capture_output=True, text=True, timeout=TIMEOUT)
        if proc.returncode:
            last = proc.stdout.strip().splitlines()[-1:] or ["[]"]
            try:
                failures += json.loads(last[0])
            except ValueError:
                failures.append(f"{page.name}: the checker died: {proc.stderr[-2000:]}")
            failures.append(proc.stderr[-3000:])
    for b in programs:
        try:
            compile(b.source(), b.where, "exec")
        except SyntaxError as e:
            failures.append(f"{b.where} ({b.name}): does not compile: {e}")
            continue
        if "compile-only" in b.flags:
            continue
        script = tmp_path / f"example_{b.name.replace('-', '_')}.py"
        script.write_text(b.source(), encoding="utf-8")
        proc = subprocess.run([sys.executable, script.name], cwd=tmp_path, env=_env(), capture_output=True,
                              text=True, timeout=TIMEOUT)
        if proc.returncode:
            failures.append(f"{b.where} ({b.name}): exit {proc.returncode}\n{proc.stderr[-3000:]}")
    assert not failures, "\n".join(failures)


def test_the_readme_is_short():
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move detail into docs/"


def test_the_readme_links_into_the_docs_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
                    reason="mkdocs/mkdocstrings not installed (the docs extra: pip install -e '.[docs]')")
@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_docs_builds_the_site_strictly():
    """`make docs`: the reference pages generated from the code, then `mkdocs build --strict` (a broken
    link, a missing page, an unresolved API name or a docstring mkdocstrings cannot read fails it).
    The venv's install stamp is taken as up to date (`-o`): this test never reinstalls."""
    venv = Path(sys.executable).parent.parent
    proc = subprocess.run(["make", "--no-print-directory", "-o", str(venv / ".installed"), "docs",
                           f"PY={sys.executable}", f"VENV={venv}"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    site = ROOT / "site"
    for page in ("index.html", "tutorial.html", "reference/api.html", "reference/settings.html"):
        assert (site / page).is_file(), page
    settings = (site / "reference" / "settings.html").read_text(encoding="utf-8")
    from gatesearch.search.settings import SearchSettings

    for name in SearchSettings.__dataclass_fields__:
        assert f"<code>{name}</code>" in settings, f"the settings page lacks {name}"
