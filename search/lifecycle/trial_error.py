"""The one-line summary of a failed trial's error text (Ray's per-trial error file).

Ray writes one block per failure: ``Failure # N (occurred at ...)``, then ``str()`` of its exception.
For an exception raised in the trial that is the worker's traceback (``ray::ImplicitFunc.train()
(pid=...)``, Ray's frames, then the user's) ending with the user's ``Type: message``, whose message
may run over several lines; for a dead worker or node it is Ray's message alone, no traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

#: ANSI colour codes (Ray colours the ``ray::...`` header of a task error)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FRAME = re.compile(r'^\s+File ".*", line \d+')
_FRAME_AT = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+)')
#: frames that are not the user's: installed packages and the standard library (gatesearch's own
#: folders: :data:`_OURS`)
_NOT_USER = re.compile(r"(site-packages|dist-packages|/lib/python3\.\d+/)")
_ROOT = Path(__file__).resolve().parents[2]  # search/lifecycle/ -> the folder holding our packages
_OURS = tuple(str(_ROOT / d) + os.sep for d in ("models", "objectives", "search", "spaces", "gatesearch"))
_FAILURE = re.compile(r"^Failure # \d+ \(occurred at .*\)$")
#: ``Type: message`` (``ray.exceptions.RayTaskError(ValueError): ...`` too)
_HEADER = re.compile(r"^[A-Za-z_][\w.]*(\([\w.]+\))?: ")
#: longest summary kept (a message can be a whole tensor)
MAX_CHARS = 300


def error_summary(text: str) -> str:
    """The last failure's exception as one line: ``Type: first line of its message``.

    That is the first unindented line after the last traceback frame (a multi-line message keeps
    its first line only; chained exceptions give the last one, the one that ended the trial); with
    no traceback, the first ``Type: message`` line, else (a dead actor or node) the first line of
    Ray's message."""
    lines = [_ANSI.sub("", line).rstrip() for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if _FAILURE.match(line)]
    block = lines[starts[-1] + 1:] if starts else lines
    frames = [i for i, line in enumerate(block) if _FRAME.match(line)]
    if frames:  # the first unindented line after the frames (their code lines and carets are indented)
        found = next((line for line in block[frames[-1] + 1:] if line and not line[0].isspace()), None)
    else:  # a ``Type: message`` line, else Ray's own message
        unindented = [line for line in block if line and not line[0].isspace()]
        found = next((line for line in unindented if _HEADER.match(line)), unindented[0] if unindented else None)
    if found is None:  # only indented lines: the last non-empty one
        found = next((line.strip() for line in reversed(block) if line.strip()), "error")
    found = found if len(found) <= MAX_CHARS else found[:MAX_CHARS - 1] + "…"
    where = user_location(block)
    return f"{found} (at {where})" if where else found


def user_location(lines: list[str]) -> str:
    """``file:line`` of the deepest traceback frame in the user's own code (not an installed
    package, the standard library or gatesearch), or '' when the error was raised elsewhere."""
    for line in reversed(lines):
        m = _FRAME_AT.match(line)
        if m and not _NOT_USER.search(m["file"]) and not m["file"].startswith(_OURS):
            return f"{m['file']}:{m['line']}"
    return ""
