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


def _finite_number(value, option: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{option} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{option} must be a finite number, got {value!r}")
    return number


def check_run_options(inference_steps, guidance_scale, seed, guidance_fraction=1.0) -> None:
    if isinstance(inference_steps, bool) or not isinstance(inference_steps, int) or inference_steps < 1:
        raise InputError(f"--inference_steps must be a whole number >= 1, got {inference_steps!r}")
    if inference_steps > MAX_INFERENCE_STEPS:
        raise InputError(f"--inference_steps must be at most {MAX_INFERENCE_STEPS} (the scheduler's timesteps), "
                         f"got {inference_steps}")
    guidance = _finite_number(guidance_scale, "--guidance_scale")
    low, high = GUIDANCE_RANGE
    if not low <= guidance <= high:
        raise InputError(f"--guidance_scale must be between {low:g} and {high:g} (official default 1.5), "
                         f"got {guidance_scale!r}")
    if not 0 < _finite_number(guidance_fraction, "--guidance_fraction") <= 1:
        raise InputError(f"--guidance_fraction must be above 0 and at most 1 (1 = guidance on every step, as the "
                         f"official), got {guidance_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"--seed must be a whole number (-1 for a random seed), got {seed!r}")


def parse_face_position(value) -> tuple[float, float] | None:
    """`X,Y` (a string, as on the command line, in a batch row or the app) or a pair of numbers, in pixels."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parts = value.replace(" ", "").split(",") if isinstance(value, str) else list(value)
    try:
        x, y = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise InputError(f"--face_position must be two numbers X,Y (pixels), got {value!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)) or x < 0 or y < 0:
        raise InputError(f"--face_position must be two numbers X,Y >= 0 (pixels), got {value!r}")
    return x, y


def parse_face_index(value) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # the app's number field
    try:
        index = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
    except ValueError:
        index = -1
    if index < 0:
        raise InputError(f"--face_index must be a whole number >= 0 (0 = the leftmost face), got {value!r}")
    return index


def check_face_options(choice, index=None, position=None) -> tuple[str | None, int | None, tuple | None]:
    """(choice, index, position) checked; `--face_index` alone means `index`, `--face_position` alone `position`.

    choice None (nothing given) leaves configs/faces.yaml's `detector.choice` in charge."""
    from latentsync.faces.detector import FACE_CHOICES

    index, position = parse_face_index(index), parse_face_position(position)
    choice = choice.strip() if isinstance(choice, str) and choice.strip() else None
    if choice is None and index is not None and position is not None:
        raise InputError("give --face_index or --face_position, not both")
    if choice is None:
        choice = "index" if index is not None else "position" if position is not None else None
    if choice is not None and choice not in FACE_CHOICES:
        raise InputError(f"unknown --face_choice {choice!r}; choose one of {', '.join(FACE_CHOICES)}")
    if index is not None and choice != "index":
        raise InputError(f"--face_index only applies to --face_choice index (got --face_choice {choice})")
    if position is not None and choice != "position":
        raise InputError(f"--face_position only applies to --face_choice position (got --face_choice {choice})")
    if choice == "position" and position is None:
        raise InputError("--face_choice position needs --face_position X,Y (pixels of the face's centre)")
    return choice, index, position


def check_occlusion(mode) -> str | None:
    """--occlusion checked: auto | hands | off, or None/empty (configs/faces.yaml `occlusion.mode` decides)."""
    from latentsync.faces.settings import OCCLUSION_MODES

    mode = mode.strip() if isinstance(mode, str) and mode.strip() else None
    if mode is not None and mode not in OCCLUSION_MODES:
        raise InputError(f"unknown --occlusion {mode!r}; choose one of {', '.join(OCCLUSION_MODES)}")
    return mode


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_path(out, inputs, flag: str = "--video_out_path") -> Path:
    """The output path, refused when it is (or resolves to) an input, a folder, or an unsupported type.

    A missing parent folder is created. The file itself is only written at the end, atomically. `flag` names the
    option in messages (the lip-synced video, or the `--debug_video` companion)."""
    path = Path(out)
    if str(out).strip() == "":
        raise InputError(f"{flag} is empty; give a file name such as out.mp4")
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; give a file name inside it, e.g. {path / 'out.mp4'}")
    if path.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise InputError(f"{flag} {path}: unsupported extension {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(OUTPUT_EXTENSIONS)}")
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise InputError(f"{flag} {path} is the file {source}; refusing to overwrite an input or another output "
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


def check_device(name, option: str = "--device"):
    """`name` as a torch.device that exists here (cpu, cuda, cuda:N, mps); an InputError naming the option else."""
    import torch

    try:
        device = torch.device(str(name).strip())
    except (RuntimeError, ValueError):
        raise InputError(f"{option} {name!r} is not a device; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{option} {name} was requested but torch sees no CUDA GPU; use {option} cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"{option} {name}: there are only {torch.cuda.device_count()} CUDA GPU(s) "
                             f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise InputError(f"{option} mps was requested but this torch has no Apple GPU; use {option} cpu")
    elif device.type != "cpu":
        raise InputError(f"{option} {name!r} is not supported; use cpu, cuda, cuda:N or mps")
    return device


def check_output_file(path, option: str, extensions=None) -> Path:
    """An output file that can be written later, checked without creating anything: not a folder, the
    extension (when `extensions` is given), and the nearest existing folder above it writable."""
    path = Path(path).expanduser()
    if str(path).strip() in ("", "."):
        raise InputError(f"{option} is empty; give a file name")
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name inside it")
    if extensions and path.suffix.lower() not in extensions:
        raise InputError(f"{option} {path}: unsupported extension {path.suffix or '(none)'!r}; "
                         f"use one of {', '.join(extensions)}")
    check_writable_folder(path.parent, option)
    return path


def check_writable_folder(folder, option: str) -> Path:
    """A folder that exists and is writable, or can be created (its nearest existing parent is a writable
    folder); nothing is created here."""
    folder = Path(folder).expanduser().absolute()
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option}: {existing} is a file, so the folder {folder} cannot be made; choose another "
                         "location")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{option}: the folder {existing} is not writable; choose a location you can write to")
    return folder


def check_input_file(path, option: str, what: str = "file") -> Path:
    """An existing, readable file (not a folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a {what}")
    if not path.is_file():
        raise InputError(f"{option}: {what} not found: {path}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{option}: {path} is not readable (permissions)")
    return path


def device_or_default(name, option: str = "--device") -> str:
    """`name` checked (`check_device`), or cuda when available and cpu otherwise for None / "auto"."""
    import torch

    if name in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(check_device(name, option))
