"""Per-step manifests: one JSON line per processed item, appended only after the item's outputs are in place.

Every shard writes its own file (`<manifests>/<step>/shard-XXXXX-of-YYYYY.jsonl`), so shards never share a
file; readers merge all files of a step and keep the last record of each item. A line cut short by a crash
is ignored by readers and trimmed before the next append, so an interrupted item is simply redone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from latentsync.utils.closing import ClosesOnExit


def manifest_file(step_dir: Path, shard_index: int, num_shards: int) -> Path:
    return step_dir / f"shard-{shard_index:05d}-of-{num_shards:05d}.jsonl"


def _trim_partial_line(path: Path) -> None:
    """Drop a trailing line without newline (the process died while writing it)."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as handle:
            handle.truncate(data.rfind(b"\n") + 1)


class ManifestWriter(ClosesOnExit):
    """Appends records durably (flush + fsync per line): a record on disk means the item is finished."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _trim_partial_line(self.path)
        self._handle = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def iter_records(step_dir: Path):
    """Every complete record of a step, file by file (sorted), in write order."""
    if not step_dir.is_dir():
        return
    for path in sorted(step_dir.glob("*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break  # cut short by a crash; the item will be redone
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def read_manifest(step_dir: Path) -> dict[str, dict]:
    """item -> its latest record, over all shards of a step."""
    records = {}
    for record in iter_records(step_dir):
        records[record["item"]] = record
    return records
