"""Passwords never leave the process: not on disk, not on screen, not in MLflow.

A database URL (``postgresql+psycopg://user:secret@host/db``, ``?password=...``) or an MLflow server
URL with credentials (``https://user:secret@host``) may reach gatesearch from the command line or the
API. What is **stored** (the search's manifest, MLflow tags) is :func:`without_password`: the URL
with no password at all; on ``resume`` the password comes from where libpq and MLflow read it
(``PGPASSWORD``, ``~/.pgpass``/``PGPASSFILE``, ``MLFLOW_TRACKING_PASSWORD``) or from the URL given
again. What is **printed** is :func:`shown` (``user:***@host``). Every password seen is also
remembered (:func:`remember`), so :func:`scrub` removes it from any text on its way out: an error
message a library wrote with the whole URL in it, a log line.

Database URLs are parsed by SQLAlchemy (``make_url``: a password with ``/``, ``@`` or ``?`` in it,
an upper-case scheme), HTTP URLs by :mod:`urllib.parse`.
"""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

#: every password seen in this process (see :func:`remember`)
_SECRETS: set[str] = set()
MASK = "***"


def _is_http(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def _parts(url: str) -> tuple[str | None, str]:
    """(the password, the URL without it) or (None, url) when there is none or it is not a URL."""
    if not isinstance(url, str) or "://" not in url:
        return None, url
    if _is_http(url):
        s = urlsplit(url)
        query = parse_qsl(s.query, keep_blank_values=True)
        qpass = [v for k, v in query if k.lower() == "password"]
        password = s.password if s.password is not None else (qpass[0] if qpass else None)
        if password is None:
            return None, url
        host = s.hostname or ""
        netloc = (f"{quote(unquote(s.username), safe='')}@" if s.username else "") + host + (
            f":{s.port}" if s.port else "")
        rest = urlencode([(k, v) for k, v in query if k.lower() != "password"])
        return unquote(password), urlunsplit((s.scheme, netloc, s.path, rest, s.fragment))
    try:
        from sqlalchemy.engine import URL, make_url

        u = make_url(url)
    except Exception:  # not a database URL SQLAlchemy reads: leave it to the caller's check
        return None, url
    qpass = [v for k, v in u.query.items() if k.lower() == "password"]
    password = u.password if u.password is not None else (qpass[0] if qpass else None)
    if password is None:
        return None, url
    if isinstance(password, (tuple, list)):
        password = password[0]
    bare = URL.create(u.drivername, username=u.username, password=None, host=u.host, port=u.port,
                      database=u.database, query={k: v for k, v in u.query.items() if k.lower() != "password"})
    return str(password), bare.render_as_string(hide_password=False)


def has_password(url: str | None) -> bool:
    """Whether ``url`` carries a password (in its user part or as a ``password`` query parameter)."""
    return bool(url) and _parts(url)[0] is not None


def without_password(url: str | None) -> str | None:
    """``url`` with no password at all: what may be stored (the password is remembered)."""
    if not url:
        return url
    password, bare = _parts(url)
    if password is not None:
        remember(password)
    return bare


def shown(url: str | None) -> str:
    """``url`` as it may be printed: ``user:***@host`` (the password is remembered)."""
    if not url:
        return url or ""
    password, bare = _parts(url)
    if password is None:
        return scrub(url)
    remember(password)
    if _is_http(url):
        s = urlsplit(bare)
        user, host = (s.netloc.split("@", 1) if "@" in s.netloc else ("", s.netloc))
        return urlunsplit((s.scheme, f"{user}:{MASK}@{host}", s.path, s.query, s.fragment))
    from sqlalchemy.engine import make_url

    u = make_url(bare)
    return u.set(password=MASK).render_as_string(hide_password=False).replace(quote(MASK, safe=""), MASK)


def remember(*passwords: str) -> None:
    """Remember passwords, so :func:`scrub` hides them wherever they turn up."""
    for p in passwords:
        if p and len(p) >= 6:  # a shorter "password" would mask common words in every message
            _SECRETS.add(p)


def remember_urls(urls: Iterable[str | None]) -> None:
    for url in urls:
        if url:
            password, _ = _parts(url)
            if password is not None:
                remember(password)


def scrub(text: str) -> str:
    """``text`` with every remembered password (raw or URL-encoded) replaced by ``***``, and the
    password of any URL with credentials in it masked."""
    if not isinstance(text, str):
        return text
    for secret in sorted(_SECRETS, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, MASK)
    # a URL we never saw (e.g. an environment variable's, in a library's message)
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):[^\s@]+@", r"\1:" + MASK + "@", text)
