"""A search's manifest: what ``gatesearch resume`` needs, in the search dir."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

MANIFEST = "gatesearch.json"
SPACE_COPY = "space.yaml"


@dataclass(frozen=True)
class Manifest:
    """What ``gatesearch resume`` needs to finish a search, written into its search dir
    (Ray's experiment dir) before the first trial starts, next to a copy of the space file."""

    search_id: str
    parent_run_id: str
    tracking_uri: str
    experiment: str
    objective: str
    space_file: str
    settings: Mapping[str, Any]
    output_dir: str
    address: str | None = None
    status: str = "running"
    optuna_storage: str | None = None  # the Optuna mirror's storage URL; None: optuna.db in output_dir
    #: ``gatesearch extend``: each extension's Ray experiment (a folder beside the search dir) and
    #: its trials, oldest first; the search dir itself is the first Ray experiment
    extensions: tuple = ()

    def ray_dirs(self, search_dir: Path) -> list[Path]:
        """Every Ray experiment of the search, oldest first (the last one is the current one)."""
        return [search_dir, *(search_dir.parent / name for name, _ in self.extensions)]

    def write(self, search_dir: Path) -> None:
        """Write it atomically, readable by its owner only, with every URL's password removed
        (:func:`~gatesearch.search.system.redact.without_password`: ``resume`` takes it from the
        environment, ``~/.pgpass`` or the URL given again)."""
        from gatesearch.search.system.redact import without_password

        stored = replace(self, tracking_uri=without_password(self.tracking_uri),
                         optuna_storage=without_password(self.optuna_storage))
        write_private(search_dir / MANIFEST, json.dumps(asdict(stored), indent=2))

    @classmethod
    def read(cls, search_dir: Path) -> "Manifest":
        path = search_dir / MANIFEST
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw["extensions"] = tuple(tuple(e) for e in raw.get("extensions", ()))
            return cls(**raw)
        except (OSError, json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{path}: not a readable gatesearch manifest ({e}); "
                             f"pass the search directory printed by `gatesearch run`") from e


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` atomically (a reader never sees half of it, a crash leaves the old
    or the new one), mode 0600, flushed to disk with its folder entry."""
    import os

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def extension_base(p: Path) -> Path | None:
    """The search dir of ``p`` when ``p`` is one of its extensions' Ray experiments
    (``<search dir>.extend<k>``, made by ``gatesearch extend``), else None."""
    name, dot, ext = p.name.rpartition(".")
    if dot and ext.startswith("extend") and ext[6:].isdigit() and (p.parent / name / MANIFEST).exists():
        return p.parent / name
    return None


def find_search_dir(path: str | Path) -> Path:
    """``path`` itself if it holds a manifest; else the one unfinished search under
    ``path/ray`` (an output dir). Errors list the candidates."""
    p = Path(path).expanduser().resolve()
    if (p / MANIFEST).exists():
        return p
    base = extension_base(p)
    if base is not None:
        return base
    if not p.exists():
        raise ValueError(f"{p}: no such directory; pass the search directory printed by `gatesearch run`")
    found = sorted((d for d in [*p.glob(f"*/{MANIFEST}"), *p.glob(f"ray/*/{MANIFEST}")]),
                   key=lambda m: m.stat().st_mtime)
    open_ = [m.parent for m in found if Manifest.read(m.parent).status != "finished"]
    if len(open_) == 1:
        return open_[0]
    if not open_:
        raise ValueError(f"{p}: no unfinished gatesearch search here ({len(found)} finished); nothing to resume"
                         + (" (`gatesearch extend <search dir> --num-samples N` adds trials to a finished one)"
                            if found else f"; pass a search directory (it contains {MANIFEST})"))
    raise ValueError(f"{p}: {len(open_)} unfinished searches; pass one of: " + ", ".join(str(d) for d in open_))


def relocate_manifests(output_dir: Path, old_root: str) -> int:
    """Rewrite the manifests under ``output_dir/ray`` whose paths start with ``old_root`` (a moved
    output folder); returns how many changed."""
    new_root, n = str(Path(output_dir).resolve()), 0
    for path in Path(output_dir).glob(f"ray/*/{MANIFEST}"):
        m = Manifest.read(path.parent)
        fix = {k: new_root + v[len(old_root):] if isinstance(v, str) and v.startswith(old_root) else v
               for k, v in (("output_dir", m.output_dir), ("tracking_uri", m.tracking_uri.replace(
                   f"sqlite:///{old_root}", f"sqlite:///{new_root}")))}
        if fix["output_dir"] != m.output_dir or fix["tracking_uri"] != m.tracking_uri:
            replace(m, **fix).write(path.parent)
            n += 1
    return n
