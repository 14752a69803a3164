"""An inter-process lock on a file: searches started at once into one output folder take turns
creating their SQLite stores (MLflow's and Optuna's schema creation and migrations are not safe
to run concurrently: "table ... already exists", "UNIQUE constraint failed: alembic_version").

``fcntl.flock`` on ``<store>.lock`` beside the store: released by the kernel when its holder
exits, so a killed search never leaves it locked. Where ``fcntl`` is missing (Windows) it is a
no-op. A PostgreSQL store (searches on several machines sharing one database) takes a
PostgreSQL advisory lock instead, held by one connection: released by the server when the
connection closes, so a killed search never leaves that locked either.
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
#: the advisory lock's key in a PostgreSQL database (any 64-bit number; this one is ours)
PG_LOCK_KEY = 0x6761746573  # "gates"


def is_postgres(uri: str) -> bool:
    """Whether ``uri`` is a SQLAlchemy URL of a PostgreSQL database (``postgresql[+driver]://``)."""
    return uri.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres") and "://" in uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///<path>`` URI (None for other stores and in-memory ones)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def store_lock(uri: str, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``<db>.lock`` for a SQLite ``uri``, the advisory lock :data:`PG_LOCK_KEY` for a
    PostgreSQL one (no lock for other stores).

    Raises:
        TimeoutError: another process held it for ``timeout_s`` seconds.
    """
    if is_postgres(uri):
        with _advisory_lock(uri, timeout_s):
            yield
        return
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


@contextlib.contextmanager
def _advisory_lock(uri: str, timeout_s: float) -> Iterator[None]:
    """Hold PostgreSQL's session-level advisory lock :data:`PG_LOCK_KEY` on one connection of
    its own (closed afterwards, which releases the lock whatever happened)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as con:
            deadline = time.monotonic() + timeout_s
            take = sqlalchemy.text("SELECT pg_try_advisory_lock(:key)")
            while not con.execute(take, {"key": PG_LOCK_KEY}).scalar():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{engine.url.render_as_string(hide_password=True)}: another process has "
                                       f"held gatesearch's schema lock for {timeout_s:g} s while creating or "
                                       f"upgrading the store's tables; is a search stuck there?")
                time.sleep(0.05)
            con.commit()
            try:
                yield
            finally:
                try:
                    con.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": PG_LOCK_KEY})
                    con.commit()
                except sqlalchemy.exc.DBAPIError:  # the connection is gone, and the lock with it
                    pass
    finally:
        engine.dispose()
