"""The batch file of `--batch`: a CSV with a header (video,audio,output) or a JSON list of objects.

Everything wrong with the file itself is an `InputError` naming the row (and line/column where the parser
knows it), before any model loads: unreadable text, broken JSON or CSV, a row without a field or with an
empty cell, and two rows that write the same output (the second would otherwise be "skipped (exists)" and
its job silently lost). A UTF-8 byte-order mark (Excel's "CSV UTF-8") and spaces around header names and
cells are accepted.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from latentsync.errors import InputError

REQUIRED = ("video", "audio", "output")
FACE_ROW_OPTIONS = ("face_choice", "face_index", "face_position")  # a row naming one of these replaces all three
ROW_OPTIONS = (*FACE_ROW_OPTIONS, "occlusion")  # per-row settings a batch file may carry
WHAT = {"video": "a video file", "audio": "an audio file", "output": "an output file name such as out.mp4"}


def read_batch(path: Path) -> list[dict]:
    """Rows of {video, audio, output} (and optionally ROW_OPTIONS), checked; see the module docstring."""
    path = Path(path)
    text = _read_text(path)
    if path.suffix.lower() == ".json":
        rows, places = _json_rows(text, path)
    else:
        rows, places = _csv_rows(text, path)
    if not rows:
        raise InputError(f"batch file {path} has no rows; add one row per job ({', '.join(REQUIRED)})")
    for row, place in zip(rows, places, strict=True):
        _check_row(row, f"batch {place} of {path}")
    _refuse_duplicate_outputs(rows, places, path)
    return rows


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise InputError(f"batch file {path} is a folder; give a .csv or .json file")
    if not path.is_file():
        raise InputError(f"batch file not found: {path}")
    try:
        return path.read_bytes().decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError as exc:
        raise InputError(f"batch file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV or "
                         "JSON") from None
    except OSError as exc:
        raise InputError(f"cannot read batch file {path}: {exc.strerror}") from None


def _json_rows(text: str, path: Path) -> tuple[list, list[str]]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"batch file {path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; "
                         "expected a list of objects like [{\"video\": ..., \"audio\": ..., \"output\": ...}]") from None
    if not isinstance(rows, list):
        kind = {dict: "one object", str: "a string", int: "a number", float: "a number", bool: "true/false"}.get(
            type(rows), "null")
        raise InputError(f"batch file {path} must hold a JSON list of objects, got {kind}"
                         + ("; wrap it in [ ]" if isinstance(rows, dict) else ""))
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"batch row {i + 1} of {path} must be an object with {', '.join(REQUIRED)}; "
                             f"got {json.dumps(row)[:80]}")
    return rows, [f"row {i + 1}" for i in range(len(rows))]


def _csv_rows(text: str, path: Path) -> tuple[list, list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        lines = [(reader.line_num, cells) for cells in reader]
    except csv.Error as exc:
        raise InputError(f"batch file {path} is not valid CSV at line {reader.line_num}: {exc}") from None
    lines = [(n, cells) for n, cells in lines if any(c.strip() for c in cells)]  # blank lines are no rows
    if not lines:
        return [], []
    header = [name.strip() for name in lines[0][1]]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise InputError(f"batch file {path}: the header (line {lines[0][0]}) lacks {', '.join(missing)}; the first "
                         f"line must name the columns, e.g. {','.join(REQUIRED)}")
    rows, places = [], []
    for number, (line, cells) in enumerate(lines[1:], start=1):
        if len(cells) > len(header):
            raise InputError(f"batch row {number} (line {line}) of {path} has {len(cells)} cells but the header "
                             f"names {len(header)} columns (a path with a comma must be in double quotes)")
        rows.append({name: cells[i].strip() if i < len(cells) else "" for i, name in enumerate(header)})
        places.append(f"row {number} (line {line})")
    return rows, places


def _check_row(row: dict, where: str) -> None:
    missing = [name for name in REQUIRED if name not in row]
    if missing:
        raise InputError(f"{where} lacks the field(s) {', '.join(missing)}; every row needs {', '.join(REQUIRED)}")
    for name in REQUIRED:
        value = row[name]
        if not isinstance(value, str):
            raise InputError(f"{where}: {name} must be a path (text), got {json.dumps(value)}")
        if not value.strip():
            raise InputError(f"{where}: the {name} cell is empty; give {WHAT[name]}")


def _refuse_duplicate_outputs(rows: list[dict], places: list[str], path: Path) -> None:
    """Two rows writing one file: the later would be skipped as done and its job lost."""
    seen: dict[str, str] = {}
    for row, place in zip(rows, places, strict=True):
        key = os.path.normcase(os.path.abspath(os.path.expanduser(row["output"])))
        if key in seen:
            raise InputError(f"batch file {path}: {seen[key]} and {place} both write {row['output']}; give every "
                             "row its own output file")
        seen[key] = place
