"""The end-of-run table: per step, how many items went in, were kept, dropped (by reason) or failed."""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from data_processing.layout import Layout
from data_processing.manifest import read_manifest
from data_processing.steps.base import DROPPED, ERROR, KEPT


@dataclass
class StepSummary:
    step: str
    folder: str
    items: int = 0
    kept: int = 0
    dropped: int = 0
    errors: int = 0
    outputs: int = 0
    input_hours: float = 0.0
    busy_seconds: float = 0.0  # summed per-item processing time (one worker each)
    reasons: Counter = field(default_factory=Counter)

    @property
    def clips_per_minute(self) -> float | None:
        """Items per minute of one worker's time."""
        return 60.0 * self.items / self.busy_seconds if self.busy_seconds > 0 else None


def summarize(layout: Layout, steps: list[str]) -> list[StepSummary]:
    rows = []
    for step in steps:
        row = StepSummary(step, layout.outputs[step].name if step != "broken" else "(input, unchanged)")
        for record in read_manifest(layout.manifest_dir(step)).values():
            row.items += 1
            row.busy_seconds += record.get("seconds") or 0.0
            row.input_hours += (record.get("duration") or 0.0) / 3600.0
            if record["status"] == KEPT:
                row.kept += 1
                row.outputs += len(record["outputs"])
            elif record["status"] == DROPPED:
                row.dropped += 1
                row.reasons[record["reason"]] += 1
            elif record["status"] == ERROR:
                row.errors += 1
                row.reasons["error"] += 1
        rows.append(row)
    return rows


def format_table(rows: list[StepSummary]) -> str:
    header = "| step | output folder | items | kept | dropped | errors | outputs | input h | clips/min/worker | drop reasons |"
    lines = [header, "|" + " --- |" * 10]
    for r in rows:
        speed = f"{r.clips_per_minute:.1f}" if r.clips_per_minute else "-"
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.reasons.items())) or "-"
        lines.append(f"| {r.step} | {r.folder} | {r.items} | {r.kept} | {r.dropped} | {r.errors} | {r.outputs} | "
                     f"{r.input_hours:.3f} | {speed} | {reasons} |")
    return "\n".join(lines)


def write_summary(layout: Layout, rows: list[StepSummary]) -> Path:
    """manifests/summary.md, replaced atomically (shards may finish at the same time)."""
    layout.manifests.mkdir(parents=True, exist_ok=True)
    target = layout.manifests / "summary.md"
    text = f"# Data processing summary\n\ninput: {layout.input_dir}\n\n{format_table(rows)}\n"
    fd, tmp = tempfile.mkstemp(prefix=".summary.", suffix=".md", dir=layout.manifests)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, target)
    return target
