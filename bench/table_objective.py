"""A stand-in training function answering from the stored 640-configuration digits table
(``bench/data/digits_table.json``, see ``bench/searchers.py``): each epoch reports the stored
(accuracy, MACs per sample) of that configuration at that epoch, instantly. Used by
``bench/shipped_path.py`` to run the searchers through ``gatesearch run`` itself."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "data" / "digits_table.json"


@lru_cache(maxsize=1)
def _table() -> dict[str, list[list[float]]]:
    return json.loads(TABLE.read_text())


def table_key(cfg) -> str:
    """The table's key (``bench/searchers.py: key``): k clipped to n_experts, moot for hash/softmax."""
    k = min(cfg.get("k", 1), cfg["n_experts"]) if cfg["gate"] in ("topk", "dselect_k", "comet") else 0
    return f"{cfg['gate']}|{cfg['n_experts']}|{k}|{cfg['lr']}|{cfg['expert_hidden']}"


def train(config, report):
    """Report the stored curve of ``config``, one epoch at a time."""
    for epoch, (acc, macs) in enumerate(_table()[table_key(config)], start=1):
        report({"accuracy": acc, "macs_per_sample": macs, "epoch": epoch})
