"""One configuration's identity: the key two proposals share exactly when they would run the same trial."""

from __future__ import annotations

import json
from typing import Any, Mapping


def config_key(config: Mapping[str, Any]) -> str:
    """``config`` as canonical JSON: keys sorted, a value JSON cannot hold (a numpy integer, a
    tuple's element of another type) as its ``str``. Equal configurations give equal keys whatever
    their key order; this is the key deduplication, the searchers' repeat tracking and the
    benchmarks compare."""
    return json.dumps(dict(config), sort_keys=True, default=str)
