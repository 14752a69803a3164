"""The one-line summary of a failed trial's error text (Ray's per-trial error file).

Ray writes one block per failure: ``Failure # N (occurred at ...)``, then ``str()`` of its exception.
For an exception raised in the trial that is the worker's traceback (``ray::ImplicitFunc.train()
(pid=...)``, Ray's frames, then the user's) ending with the user's ``Type: message``, whose message
may run over several lines; for a dead worker or node it is Ray's message alone, no traceback.
"""

from __future__ import annotations

import re

#: ANSI colour codes (Ray colours the ``ray::...`` header of a task error)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FRAME = re.compile(r'^\s+File ".*", line \d+')
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
    return found if len(found) <= MAX_CHARS else found[:MAX_CHARS - 1] + "…"
