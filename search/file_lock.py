"""An inter-process lock on a file: searches started at once into one output folder take turns
creating their SQLite stores (MLflow's and Optuna's schema creation and migrations are not safe
to run concurrently: "table ... already exists", "UNIQUE constraint failed: alembic_version").

``fcntl.flock`` on ``<store>.lock`` beside the store: released by the kernel when its holder
exits, so a killed search never leaves it locked. Where ``fcntl`` is missing (Windows) it is a
no-op.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

#: how long to wait for another process's store creation (migrating an old store can take a while)
LOCK_TIMEOUT_S = 300.0


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///<path>`` URI (None for other stores and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def store_lock(uri: str, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``<db>.lock`` for a SQLite ``uri`` (no lock for other stores).

    Raises:
        TimeoutError: another process held it for ``timeout_s`` seconds.
    """
    db = sqlite_path(uri)
    if db is None or fcntl is None:
        yield
        return
    lock = db.with_name(db.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{lock}: another process has held this lock for {timeout_s:g} s while "
                                       f"creating or upgrading {db.name}; is a search stuck there?") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock
