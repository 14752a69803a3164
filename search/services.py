"""Fail fast when a service a search needs is not there, before anything is written.

Both checks run before the output directory, the MLflow parent run or any trial exists:

- :func:`check_ray_address`: a TCP connection to the cluster's GCS port (``host:port``, or the
  Ray Client port of ``ray://host:port``), at most :data:`RAY_TIMEOUT_S` seconds. Without it, Ray
  retries a dead address for minutes.
- :func:`check_tracking_uri`: ``GET <uri>/health`` on an MLflow tracking server, at most
  :data:`TRACKING_TIMEOUT_S` seconds; for a local SQLite store, that its folder can be created.

Plain sockets and ``urllib``: this module imports neither Ray nor MLflow.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

RAY_TIMEOUT_S = 5.0
TRACKING_TIMEOUT_S = 5.0


class ServiceUnavailable(ValueError):
    """A service the search needs is unreachable; the message says which and how to start it."""


def split_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a Ray address, or None for ``auto``/``local`` (resolved by Ray)."""
    if address in ("auto", "local"):
        return None
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ServiceUnavailable(f"--address {address!r}: expected host:port (e.g. 127.0.0.1:6379) or "
                                 f"ray://host:port; start a cluster with `ray start --head` and pass the address "
                                 f"it prints")
    return host.strip("[]"), int(port)


def check_ray_address(address: str, timeout_s: float = RAY_TIMEOUT_S) -> None:
    """Raise :class:`ServiceUnavailable` unless something accepts connections at ``address``."""
    hp = split_address(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout_s):
            return
    except OSError as e:
        reason = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e)).lower()
        raise ServiceUnavailable(
            f"no Ray cluster at {address} ({reason} after at most {timeout_s:g} s); start one with "
            f"`ray start --head --port={hp[1]}` (and `ray start --address={hp[0]}:{hp[1]}` on each worker), "
            f"or leave out --address to run on a private local instance") from None


def check_tracking_uri(uri: str, timeout_s: float = TRACKING_TIMEOUT_S) -> None:
    """Raise :class:`ServiceUnavailable` unless the tracking store at ``uri`` can be used."""
    if uri.startswith(("http://", "https://")):
        url = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as r:  # noqa: S310 - http(s) only, checked above
                if r.status == 200:
                    return
                reason = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            reason = f"HTTP {e.code} from {url}"
        except (urllib.error.URLError, OSError) as e:
            inner = getattr(e, "reason", e)
            reason = "timed out" if isinstance(inner, TimeoutError) else str(getattr(inner, "strerror", None)
                                                                              or inner).lower()
        raise ServiceUnavailable(
            f"MLflow tracking server at {uri} is not reachable ({reason}, waited at most {timeout_s:g} s); start "
            f"it (`mlflow server --host 127.0.0.1 --port <port> ...`) or leave out --tracking-uri to log to a "
            f"local SQLite store in the output directory")
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///"):]).parent
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not _writable(existing):
            raise ServiceUnavailable(f"tracking URI {uri}: cannot create the SQLite store in {folder} "
                                     f"(not writable); pass --output-dir or --tracking-uri in a writable place")
        return
    if "://" not in uri and not uri.startswith("databricks"):
        raise ServiceUnavailable(f"tracking URI {uri!r}: expected http(s)://host:port or sqlite:///<absolute path>")


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)
