"""The one did-you-mean helper (pure standard library; every package may import it)."""

from __future__ import annotations

import difflib
from typing import Any, Iterable


def did_you_mean(word: Any, options: Iterable[Any]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options`` to ``word``, or ``""``."""
    hint = difflib.get_close_matches(str(word), [str(o) for o in options], n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""
