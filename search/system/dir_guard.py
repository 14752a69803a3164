"""A search dir on a shared machine: owner-only files, trusted before it is read, driven by one process.

A search dir holds code in all but name: ``resume`` and ``extend`` unpickle Ray's and the
searcher's saved state and import the plugins named in the space file's copy. So:

- **Owner-only files.** While gatesearch writes (``run``, ``resume``, ``extend``), its umask is
  ``077`` (:func:`private_files`): the output folder, the manifest, ``mlflow.db``, ``optuna.db``,
  checkpoints and Ray's state are readable by their owner only. A team that shares an output
  folder through a group sets ``GATESEARCH_UMASK`` (e.g. ``027``: the group reads, nobody else);
  a group that may write there must also pass ``--trust-dir`` to ``resume``/``extend``.
- **Trusted before it is read** (:func:`check_trusted`): ``resume``, ``extend`` and
  ``--warm-start <dir>`` refuse a search dir, or a file in it, that is not owned by the user
  running gatesearch or that others can write (and the folders above it up to the output folder),
  unless ``--trust-dir`` is given.
- **One driver at a time** (:class:`SearchDirLock`): an exclusive ``flock`` on
  ``<search dir>/gatesearch.lock`` for the driver's lifetime (it goes with the process, even a
  SIGKILLed one; NFSv4 supports it). A second ``resume``/``extend`` fails at once, naming the pid
  and host that hold it.
- **An output folder in use is never removed** (:class:`OutputFolderUse`): every driver holds a
  shared lock on ``<output dir>/.gatesearch.lock``; a ``run`` that fails before its search starts
  removes what it made (its search dir and parent run) and the output folder only if it created it
  and no other driver holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import stat
import time
from pathlib import Path
from typing import Iterator

LOCK_NAME = "gatesearch.lock"
OUTPUT_LOCK = ".gatesearch.lock"
#: at most this many files of a search dir are named in a refusal
_SHOWN = 5


class UntrustedSearchDir(ValueError):
    """A search dir (or a file in it) that someone other than its user could have written."""


class SearchDirInUse(ValueError):
    """Another driver holds the search dir's lock."""


def umask() -> int:
    """The umask gatesearch writes with: ``GATESEARCH_UMASK`` (octal, e.g. ``027``) or ``077``."""
    raw = os.environ.get("GATESEARCH_UMASK", "077")
    try:
        value = int(raw, 8)
    except ValueError:
        raise ValueError(f"GATESEARCH_UMASK={raw!r}: expected an octal umask such as 077 (owner only) or 027 "
                         "(the group reads)") from None
    if not 0 <= value <= 0o777 or value & 0o002 == 0:
        raise ValueError(f"GATESEARCH_UMASK={raw!r}: others must not be able to write (use e.g. 077 or 027)")
    return value


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Create files with :func:`umask` (and so do the processes started meanwhile: Ray's)."""
    previous = os.umask(umask())
    try:
        yield
    finally:
        os.umask(previous)


def _who(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (KeyError, ImportError):
        return f"uid {uid}"


def _problem(path: Path, st: os.stat_result, me: int) -> str | None:
    if st.st_uid != me:
        return f"{path} is owned by {_who(st.st_uid)}"
    if stat.S_ISLNK(st.st_mode):
        return None  # a link of our own: what it points to is checked where it is read
    writable = [who for who, bit in (("its group", stat.S_IWGRP), ("everyone", stat.S_IWOTH)) if st.st_mode & bit]
    if writable:
        return f"{path} can be written by {' and '.join(writable)} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def check_trusted(search_dir: Path, *, also: tuple[Path, ...] = (), trust: bool = False, what: str = "resume") -> None:
    """Raise :class:`UntrustedSearchDir` unless ``search_dir``, every file and folder in it (and in
    ``also``: an extension's Ray experiment), and the folders above it up to the output folder
    (``<output>/ray/<search>``) belong to this user and can be written by nobody else. ``trust``
    (``--trust-dir``) skips the check."""
    if trust or os.name != "posix":
        return
    me = os.geteuid()
    problems: list[str] = []
    search_dir = Path(search_dir)
    for folder in (search_dir.parent, search_dir.parent.parent):  # <output>/ray and <output>
        with contextlib.suppress(OSError):
            p = _problem(folder, folder.lstat(), me)
            if p:
                problems.append(p)
    for root in (search_dir, *also):
        if not root.exists():
            continue
        for dirpath, _, filenames in os.walk(root):  # every folder, then its files (links not followed)
            for path in (Path(dirpath), *(Path(dirpath) / f for f in filenames)):
                try:
                    p = _problem(path, path.lstat(), me)
                except OSError:
                    continue
                if p:
                    problems.append(p)
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise UntrustedSearchDir(
            f"{search_dir}: not yours alone: {'; '.join(problems[:_SHOWN])}{more}. `gatesearch {what}` unpickles "
            "the search's saved state and imports the plugins its space file names, so whoever can write there "
            f"runs code as you. Make it yours (chown -R, chmod -R go-w) or, if you trust everyone who can write "
            f"there, pass --trust-dir")


class SearchDirLock:
    """An exclusive lock on a search dir for one driver's lifetime (see the module)."""

    def __init__(self, search_dir: Path):
        self.path = Path(search_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> "SearchDirLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise SearchDirInUse(f"{self.path.parent}: this search is being driven by {holder}; wait for it to end, "
                                 "or stop it (Ctrl-C there, or kill -INT <pid>) and then resume it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None

    def __enter__(self) -> "SearchDirLock":
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


class OutputFolderUse:
    """A shared lock on ``<output dir>/.gatesearch.lock`` while a driver uses the output folder;
    :meth:`remove_if_unused` removes the folder only when no other driver holds it."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.fd: int | None = None

    def acquire(self) -> "OutputFolderUse":
        fd = os.open(self.out / OUTPUT_LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        self.fd = fd
        return self

    def remove_if_unused(self) -> bool:
        """Remove the whole output folder if no other driver uses it (this one must have created
        it); returns whether it did."""
        import shutil

        if self.fd is None:
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # another search started here meanwhile: its files stay
        shutil.rmtree(self.out, ignore_errors=True)
        self.release()
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
