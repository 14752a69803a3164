"""Fail fast when a service a search needs is not there, before anything is written.

Both checks run before the output directory, the MLflow parent run or any trial exists:

- :func:`check_ray_address`: a TCP connection to the cluster's GCS port (``host:port``, or the
  Ray Client port of ``ray://host:port``), at most :data:`RAY_TIMEOUT_S` seconds. Without it, Ray
  retries a dead address for minutes.
- :func:`check_tracking_uri`: ``GET <uri>/health`` on an MLflow tracking server, at most
  :data:`TRACKING_TIMEOUT_S` seconds; for a local SQLite store, that its folder can be created;
  for a PostgreSQL database, a login to it (:func:`check_postgres`).
- :func:`check_optuna_storage`: the Optuna mirror's storage (``--optuna-storage``): a SQLite file
  that can be created, or a PostgreSQL database that accepts a login.

Plain sockets, ``urllib`` and psycopg: this module imports neither Ray nor MLflow.
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

from gatesearch.search.system.file_lock import is_postgres

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
    if is_postgres(uri):
        check_postgres(uri, "tracking URI", timeout_s)
        return
    if "://" not in uri and not uri.startswith("databricks"):
        from gatesearch.search.system.redact import shown

        raise ServiceUnavailable(f"tracking URI {shown(uri)!r}: expected http(s)://host:port or "
                                 "sqlite:///<absolute path>")


POSTGRES_EXTRA = "pip install 'gatesearch[postgres]'"


def check_optuna_storage(url: str, timeout_s: float = TRACKING_TIMEOUT_S) -> None:
    """Raise :class:`ServiceUnavailable` unless the Optuna mirror can use the storage ``url``:
    ``sqlite:///<absolute path>`` (its folder creatable) or ``postgresql+psycopg://user:pw@host:port/db``."""
    from gatesearch.search.system.redact import shown

    what = f"--optuna-storage {shown(url)!r}"
    if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
        path = Path(url[len("sqlite:///"):].split("?", 1)[0])
        if not path.is_absolute():
            raise ServiceUnavailable(f"{what}: the SQLite path must be absolute (sqlite:////abs/path/optuna.db)")
        existing = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
        if existing is None or not existing.is_dir() or not _writable(existing):
            raise ServiceUnavailable(f"{what}: cannot create the SQLite file in {path.parent} (not writable)")
        return
    if is_postgres(url):
        check_postgres(url, "--optuna-storage", timeout_s)
        return
    raise ServiceUnavailable(f"{what}: expected postgresql+psycopg://user:password@host:port/database (a team "
                             f"database; {POSTGRES_EXTRA}) or sqlite:////absolute/path/optuna.db; leave it out "
                             f"for optuna.db in the output directory")


def check_postgres(url: str, what: str, timeout_s: float = TRACKING_TIMEOUT_S) -> None:
    """Log in to the PostgreSQL database of the SQLAlchemy URL ``url`` (at most ``timeout_s``
    seconds); raise :class:`ServiceUnavailable` saying what is wrong: the driver not installed,
    no server, a refused login, a missing database."""
    from sqlalchemy.engine import make_url

    from gatesearch.search.system.redact import shown as masked

    shown = masked(url)  # never print the password
    try:
        u = make_url(url)
    except Exception as e:  # noqa: BLE001 - SQLAlchemy's ArgumentError and ValueError
        raise ServiceUnavailable(f"{what} {shown}: not a database URL ({e})") from None
    driver = u.drivername.split("+", 1)[1] if "+" in u.drivername else "psycopg2"  # SQLAlchemy's default
    if driver != "psycopg":
        import importlib.util

        if importlib.util.find_spec(driver) is None:
            raise ServiceUnavailable(f"{what} {shown}: the driver {driver!r} is not installed; use psycopg 3: "
                                     f"write postgresql+psycopg://... and {POSTGRES_EXTRA}")
        return  # another driver: SQLAlchemy reports its own errors
    try:
        import psycopg
    except ImportError:
        raise ServiceUnavailable(f"{what} {shown}: PostgreSQL needs psycopg, which is not installed; "
                                 f"{POSTGRES_EXTRA}") from None
    # the URL's parts as libpq keywords (a password with '/', '@' or '?' in it is not a libpq URI);
    # what the URL leaves out libpq takes from PGPASSWORD, ~/.pgpass, PGSSLMODE...
    kwargs = {k: v for k, v in {"host": u.host, "port": u.port, "user": u.username, "password": u.password,
                                "dbname": u.database}.items() if v is not None}
    kwargs.update({k: v if isinstance(v, str) else v[0] for k, v in u.query.items()})
    try:
        with psycopg.connect(connect_timeout=max(1, round(timeout_s)), **kwargs):
            return
    except psycopg.Error as e:
        from gatesearch.search.system.redact import scrub

        reason = scrub(" ".join(str(e).split())[:400])
    database = u.database or ""
    if "does not exist" in reason and database and f'"{database}"' in reason:
        fix = f"create it: createdb -h <host> -p <port> -U <user> {database}"
    elif "password" in reason or "authentication" in reason:
        fix = ("check the user and the password: gatesearch never stores a password, so after the first run it "
               "comes from PGPASSWORD, ~/.pgpass (PGPASSFILE) or the URL given again")
    else:
        fix = "start the server (or check host and port)"
    raise ServiceUnavailable(f"{what} {shown}: PostgreSQL is not usable ({reason}, waited at most {timeout_s:g} s); "
                             f"{fix}")


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)
