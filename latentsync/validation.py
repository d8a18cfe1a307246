"""Checks of everything a user passes in, done before any model is loaded or frame decoded.

Each failure is an `InputError` whose message names the option or path, what is wrong with it and what to do.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from latentsync.errors import InputError

# Containers the writer (H.264 video + AAC audio through ffmpeg) can produce.
OUTPUT_EXTENSIONS = (".mp4", ".mov", ".mkv", ".m4v")
GUIDANCE_RANGE = (0.0, 20.0)  # official inference uses 1.0-3.0; beyond 20 the output is noise
MAX_INFERENCE_STEPS = 1000  # the scheduler's training timesteps


def check_run_options(inference_steps, guidance_scale, seed) -> None:
    if isinstance(inference_steps, bool) or not isinstance(inference_steps, int) or inference_steps < 1:
        raise InputError(f"--inference_steps must be a whole number >= 1, got {inference_steps!r}")
    if inference_steps > MAX_INFERENCE_STEPS:
        raise InputError(f"--inference_steps must be at most {MAX_INFERENCE_STEPS} (the scheduler's timesteps), "
                         f"got {inference_steps}")
    try:
        guidance = float(guidance_scale)
    except (TypeError, ValueError):
        raise InputError(f"--guidance_scale must be a number, got {guidance_scale!r}") from None
    low, high = GUIDANCE_RANGE
    if not math.isfinite(guidance) or not low <= guidance <= high:
        raise InputError(f"--guidance_scale must be between {low:g} and {high:g} (official default 1.5), "
                         f"got {guidance_scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"--seed must be a whole number (-1 for a random seed), got {seed!r}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_path(out, inputs) -> Path:
    """The output path, refused when it is (or resolves to) an input, a folder, or an unsupported type.

    A missing parent folder is created. The file itself is only written at the end, atomically."""
    path = Path(out)
    if str(out).strip() == "":
        raise InputError("--video_out_path is empty; give a file name such as out.mp4")
    if path.is_dir():
        raise InputError(f"--video_out_path {path} is a folder; give a file name inside it, e.g. {path / 'out.mp4'}")
    if path.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise InputError(f"--video_out_path {path}: unsupported extension {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(OUTPUT_EXTENSIONS)}")
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise InputError(f"--video_out_path {path} is the input file {source}; refusing to overwrite an input "
                             "(choose another output name)")
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create the output folder {path.parent}: {exc.strerror}") from None
    elif not path.parent.is_dir():
        raise InputError(f"the output folder {path.parent} is not a folder")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"the output folder {path.parent} is not writable")
    return path
