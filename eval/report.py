"""Plain-text tables and JSON files for metric results (no extra dependencies)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from latentsync.utils.atomic import atomic_write_text
from latentsync.validation import check_output_file


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
    """Write `payload` as indented JSON, atomically (a stop or a full disk never leaves half a file), creating
    the folder. Check the path with `check_json_out` before the evaluation runs."""
    return atomic_write_text(path, json.dumps(payload, indent=2, default=str) + "\n")


def check_json_out(path: str | Path | None, option: str = "--json_out") -> None:
    """Before any model loads: the results file can be written (not a folder, a writable place, .json)."""
    if path is not None:
        check_output_file(path, option, extensions=(".json",))
