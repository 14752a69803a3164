"""Rich rendering of fronts and trials for the terminal."""

from __future__ import annotations

from typing import Any, Sequence

from rich.table import Table


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.0f}"
    return "" if v is None else str(v)


def front_table(front: Sequence[dict[str, Any]], objectives: Sequence[str], title: str = "Pareto front") -> Table:
    """One row per non-dominated trial, objectives first."""
    cols = ["trial", "gate", "n_experts", "k", "local_search", "n_blocks", "lambda_cost", "confidence", *objectives,
            "test_accuracy", "active_experts"]
    cols = [c for c in cols if any(r.get(c) is not None for r in front)] or ["trial", *objectives]
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="right" if c not in ("trial", "gate") else "left")
    for r in front:
        table.add_row(*(_fmt(r.get(c)) for c in cols))
    return table
