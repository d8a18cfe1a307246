"""`--candidate KEY=VALUE,...` of the benchmarks: a preset with some option values changed, to try a lever."""

from __future__ import annotations

import yaml


def option_changes(text: str) -> dict:
    """`"inference_steps=6,guidance_fraction=0.5"` -> {"inference_steps": 6, "guidance_fraction": 0.5} (YAML values)."""
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(pair) != 2 for pair in pairs):
        raise SystemExit(f"--candidate {text!r}: expected KEY=VALUE pairs separated by commas")
    return {key.strip(): yaml.safe_load(value) for key, value in pairs}
