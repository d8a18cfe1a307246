"""Plain-text tables and JSON files for metric results (no extra dependencies)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path


def format_value(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def format_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A markdown table of `rows` restricted to `columns` (missing cells print as '-')."""
    cells = [[format_value(row.get(col)) for col in columns] for row in rows]
    widths = [max([len(col)] + [len(r[i]) for r in cells]) for i, col in enumerate(columns)]
    line = lambda values: "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"  # noqa: E731
    out = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def mean_row(rows: Sequence[dict], columns: Sequence[str], label_column: str, label: str = "mean") -> dict:
    """Mean of each numeric column over the rows that have it."""
    out = {label_column: label}
    for col in columns:
        values = [r[col] for r in rows if isinstance(r.get(col), (int, float)) and not isinstance(r.get(col), bool)]
        if values and col != label_column:
            out[col] = sum(values) / len(values)
    return out


def write_json(path: str | Path, payload: dict) -> Path:
    """Write `payload` as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
