"""The lock's drift checks (``make lock-check``, ``make test-latest``).

``python scripts/check_lock.py``: every requirement ``pyproject.toml`` states for the locked
environment (the base dependencies and the extras in ``LOCKED_EXTRAS``) is pinned in
``requirements/lock.txt`` at a version its range allows. A dependency added, removed or re-ranged
without ``make lock`` fails here, naming the package and the fix. Offline: reads two files.

``python scripts/check_lock.py --installed``: every locked package whose installed version in this
environment differs from its pin, as ``name: lock -> installed`` (``make test-latest`` prints it for
its venv of the newest allowed versions). Exit status 0 either way.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # a fresh venv holds only pip, which vendors packaging
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
#: the extras the lock covers: what `make test` installs (keep in step with the Makefile's EXTRAS)
LOCKED_EXTRAS = ("test", "botorch", "postgres", "docs", "bench")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def pins(lock: Path = LOCK) -> dict[str, str]:
    """Package (canonical name) -> pinned version."""
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line.strip())
        if m:
            out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def requirements() -> list[tuple[str, Requirement]]:
    """(where, requirement) for the base dependencies and the locked extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    out = [("dependencies", Requirement(r)) for r in project.get("dependencies", [])]
    for extra in LOCKED_EXTRAS:
        out += [(f"optional-dependencies.{extra}", Requirement(r))
                for r in project.get("optional-dependencies", {}).get(extra, [])]
    return out


def drift() -> list[str]:
    """What the lock is missing or pins outside pyproject's ranges."""
    locked, problems = pins(), []
    for where, req in requirements():
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name not in locked:
            problems.append(f"{req.name} ({where}) is not in {LOCK.relative_to(ROOT)}")
        elif not req.specifier.contains(Version(locked[name]), prereleases=True):
            problems.append(f"{req.name}=={locked[name]} in the lock is outside {where}'s range {req.specifier}")
    return problems


def installed_differences() -> list[str]:
    out = []
    for name, pinned in sorted(pins().items()):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(f"{name}: {pinned} -> not installed")
            continue
        if Version(have) != Version(pinned):
            out.append(f"{name}: {pinned} -> {have}")
    return out


def main(argv: list[str]) -> int:
    if "--installed" in argv:
        diffs = installed_differences()
        print(f"{len(diffs)} package(s) differ from {LOCK.relative_to(ROOT)} (lock -> this venv):")
        for line in diffs:
            print(f"  {line}")
        return 0
    problems = drift()
    if problems:
        print(f"{LOCK.relative_to(ROOT)} does not match pyproject.toml:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print("fix: `make lock` (keeps every other pin), commit the lock with pyproject.toml", file=sys.stderr)
        return 1
    print(f"{LOCK.relative_to(ROOT)}: {len(pins())} pins, every pyproject.toml requirement satisfied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
