"""Rich rendering of fronts and trials for the terminal."""

from __future__ import annotations

from typing import Any, Sequence

from rich.table import Table


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4f}" if abs(v) < 100 else f"{v:,.0f}"
    return "" if v is None else str(v)


def front_table(front: Sequence[dict[str, Any]], objectives: Sequence[str], title: str = "Pareto front",
                columns: Sequence[str] = (), metrics: Sequence[str] = ()) -> Table:
    """One row per non-dominated trial: the trial, the objective's ``columns`` (what the trial
    was), its objectives, then extra ``metrics``. Columns empty in every row are left out."""
    cols = ["trial", *columns, *objectives, *metrics]
    cols = [c for c in cols if any(r.get(c) is not None for r in front)] or ["trial", *objectives]
    table = Table(title=title)
    for c in cols:
        text = all(isinstance(r.get(c), str) for r in front if r.get(c) is not None)
        table.add_column(c, justify="left" if text else "right")
    for r in front:
        table.add_row(*(_fmt(r.get(c)) for c in cols))
    return table
