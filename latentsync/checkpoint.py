"""Reading checkpoints safely, and comparing their tensors with a model: the one place that does either.

Every model, eval, training and whisper loader reads files here, so the same rules hold everywhere: tensors
and plain containers only (`torch.load(weights_only=True)` or safetensors), never arbitrary pickled objects;
the common containers (`{"state_dict": ...}`, `{"model": ...}`, `{"module": ...}`, a bare state dict) and key
prefixes (`module.`) are unwrapped in one way; and every failure is a `CheckpointError` that names the file
and says what to do, instead of a zip or unpickling traceback.

Official LatentSync checkpoints are `torch.save({"state_dict": ..., "global_step": int})` files (syncnet
ones add loss/step lists). `.safetensors` files hold a flat state dict, with an optional `global_step`
in their metadata.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from latentsync.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "Checkpoint",
    "LoadReport",
    "SkippedTensor",
    "StateDictDiff",
    "load_torch_file",
    "read_checkpoint",
    "diff_state_dicts",
    "load_state_dict_exactly",
    "load_weights",
    "state_dict_shapes",
]

SAFETENSORS_SUFFIXES = (".safetensors",)
DOWNLOAD_HINT = "Download the weights (see checkpoints/README.md) or fix the path."
STATE_DICT_KEYS = ("state_dict",)  # the official LatentSync container
COMMON_CONTAINERS = ("state_dict", "model", "module")  # also VideoMAE / third-party training scripts
FIT_ADVICE = "Check that the file is the right model (see checkpoints/README.md and docs/evaluation.md)."
CONVERSION_HINT = (
    "It is not a plain state dict (it probably pickles a whole model object), and loading it would mean "
    "running code from the file, which this project never does. Convert it once, in an environment you "
    "trust that has the original model class importable, e.g.\n"
    "    python -c \"import torch; m = torch.load('{path}', weights_only=False); "
    "sd = m.state_dict() if hasattr(m, 'state_dict') else m; "
    "torch.save({{k: v for k, v in sd.items()}}, '{stem}.pt')\"\n"
    "or save it with safetensors.torch.save_file(sd, '{stem}.safetensors'); then pass the new file."
)


class CheckpointError(InputError):
    """A checkpoint file is missing, truncated, corrupt, unsafe to load, or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint path names no file (also a FileNotFoundError, for callers that catch that)."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, normalised: the tensors, the training step, and where it came from."""

    state_dict: dict[str, torch.Tensor]
    global_step: int
    source: str
    extras: dict = field(default_factory=dict)  # other top-level entries (global_step, syncnet loss curves)


# ---------------------------------------------------------------------------------------------- reading


def _size_text(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size} bytes"


def _corrupt(path: Path, err: Exception) -> CheckpointError:
    detail = str(err).strip().splitlines()[0] if str(err).strip() else "no detail"
    return CheckpointError(
        f"cannot read checkpoint {path} ({_size_text(path)}): the file is truncated or corrupt "
        f"({type(err).__name__}: {detail}). Re-download it (see checkpoints/README.md) or re-save it."
    )


def _existing_file(path: str | Path, what: str, hint: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"{what} not found: {path}. {hint}")
    if path.stat().st_size:
        return path
    raise CheckpointError(f"{what} {path} is empty (0 bytes): an interrupted download or save; fetch it again")


def load_torch_file(path: str | Path, what: str = "checkpoint", hint: str = DOWNLOAD_HINT, map_location="cpu"):
    """Whatever a torch.save'd file holds, as long as it is tensors and plain containers (weights_only=True).

    `what` and `hint` name the file and the fix in the not-found message.
    """
    path = _existing_file(path, what, hint)
    try:
        # Zip-format files (every torch.save since 1.6) are memory-mapped: tensors are paged in lazily.
        return torch.load(path, map_location=map_location, weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        disallowed = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if disallowed is None:  # garbage that happens to start like a pickle
            raise _corrupt(path, err) from err
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and plain containers ({disallowed.group(1)}), so it "
            "was NOT unpickled (weights_only=True). Use a plain checkpoint ({'state_dict': ..., 'global_step': "
            "...}) or a .safetensors file. " + CONVERSION_HINT.format(path=path, stem=path.with_suffix(""))
        ) from err
    except Exception as err:  # zip/EOF/unpickler errors of truncated or corrupt files
        raise _corrupt(path, err) from err


def _load_safetensors_file(path: Path, map_location) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as err:
        raise CheckpointError(
            f"cannot read safetensors checkpoint {path} ({_size_text(path)}): the file is truncated or corrupt "
            f"({type(err).__name__}: {err}). Re-download or re-save it."
        ) from err
    return tensors, metadata


def _split_container(obj: object, path: Path, what: str, containers: Iterable[str]) -> tuple[Mapping, dict]:
    """(state dict, other top-level entries) of a loaded object; the first of `containers` present wins."""
    if not isinstance(obj, Mapping):
        hint = CONVERSION_HINT.format(path=path, stem=path.with_suffix(""))
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dictionary.\n{hint}")
    for key in containers:
        if key in obj and isinstance(obj[key], Mapping):
            return obj[key], {k: v for k, v in obj.items() if k != key}
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, {}  # a bare state dict (e.g. diffusers or hand-exported weights)
    raise CheckpointError(
        f"{path} is a dictionary without a {' / '.join(map(repr, containers))} entry and is not a flat tensor "
        f"dictionary either (top-level keys: {sorted(map(str, obj))[:8]}); it is not a {what}"
    )


def _strip_prefixes(state_dict: Mapping, prefixes: Iterable[str]) -> dict:
    """Keys without the first matching prefix (DataParallel's `module.`, a wrapper's attribute name)."""
    stripped = {}
    for key, value in state_dict.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        stripped[key] = value
    return stripped


def _as_step(value: object, path: Path) -> int:
    if value is None:
        return 0
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return int(value.item())
    if not isinstance(value, int):
        raise CheckpointError(f"{path}: global_step is a {type(value).__name__}, expected an int")
    return value


def read_checkpoint(
    path: str | Path,
    map_location="cpu",
    *,
    what: str = "checkpoint",
    hint: str = DOWNLOAD_HINT,
    containers: Iterable[str] = STATE_DICT_KEYS,
    prefixes: Iterable[str] = (),
) -> Checkpoint:
    """Load a `.pt`/`.pth`/`.ckpt` (torch zip or legacy format) or `.safetensors` checkpoint, tensors only.

    The state dict is the entry under the first of `containers` the file has, or the whole file when it is
    a flat tensor dictionary; keys lose the first of `prefixes` they start with.
    """
    path = _existing_file(path, what, hint)
    containers, prefixes = tuple(containers), tuple(prefixes)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        state_dict, metadata = _load_safetensors_file(path, map_location)
        step_text = metadata.get("global_step", "0")
        global_step = int(step_text) if step_text.lstrip("-").isdigit() else 0
        return Checkpoint(_strip_prefixes(state_dict, prefixes), global_step, str(path))

    state_dict, extras = _split_container(load_torch_file(path, what, hint, map_location), path, what, containers)
    bad = [k for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state_dict entries that are not named tensors: {bad[:5]}")
    global_step = _as_step(extras.get("global_step"), path)
    return Checkpoint(_strip_prefixes(state_dict, prefixes), global_step, str(path), extras)


# ---------------------------------------------------------------------------------------------- comparing


def state_dict_shapes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape, the structural fingerprint used to compare checkpoints with configs."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def _shape(value) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


@dataclass
class StateDictDiff:
    """How a checkpoint's tensors differ from a model's: keys it lacks, keys it adds, shapes that differ."""

    missing: list[str]
    unexpected: list[str]
    reshaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]]  # (key, checkpoint shape, model shape)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.reshaped)

    @property
    def count(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.reshaped)

    def counts(self) -> str:
        """"3 missing, 2 reshaped": the short form for comparing many configs."""
        sizes = ((self.missing, "missing"), (self.unexpected, "unexpected"), (self.reshaped, "reshaped"))
        return ", ".join(f"{len(items)} {label}" for items, label in sizes if items)

    def describe(self, limit: int = 5) -> str:
        """Human-readable summary with examples; empty when the dicts fit."""
        reshaped = [f"{key}: file {given} vs model {expected}" for key, given, expected in self.reshaped]
        parts = []
        for label, items in (("missing keys", self.missing), ("unexpected keys", self.unexpected),
                             ("shape mismatches (wrong shape)", reshaped)):
            if items:
                more = " ..." if len(items) > limit else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:limit])}{more}")
        return "; ".join(parts)


def diff_state_dicts(expected: Mapping, given: Mapping, optional_suffixes: Iterable[str] = ()) -> StateDictDiff:
    """Compare a model's state dict (or key -> shape map) with a checkpoint's, in the model's key order.

    Model keys ending in one of `optional_suffixes` (e.g. BatchNorm's `num_batches_tracked`) may be absent.
    """
    optional = tuple(optional_suffixes)
    return StateDictDiff(
        missing=[k for k in expected if k not in given and not (optional and k.endswith(optional))],
        unexpected=[k for k in given if k not in expected],
        reshaped=[(k, _shape(given[k]), _shape(expected[k]))
                  for k in expected if k in given and _shape(given[k]) != _shape(expected[k])],
    )


def load_state_dict_exactly(model: torch.nn.Module, state_dict: Mapping, what: str, source: str | Path,
                            optional_suffixes: Iterable[str] = (), advice: str = FIT_ADVICE,
                            assign: bool = False) -> None:
    """Load `state_dict` into `model`, refusing unknown, missing or mis-shaped tensors with one clear message."""
    optional_suffixes = tuple(optional_suffixes)
    diff = diff_state_dicts(model.state_dict(), state_dict, optional_suffixes)
    if diff:
        raise CheckpointError(f"{what} checkpoint {source} does not fit the model: {diff.describe()}. {advice}")
    model.load_state_dict(state_dict, strict=not optional_suffixes, assign=assign)


def load_weights(model: torch.nn.Module, path: str | Path, what: str, *, hint: str = DOWNLOAD_HINT,
                 containers: Iterable[str] = COMMON_CONTAINERS, prefixes: Iterable[str] = (),
                 optional_suffixes: Iterable[str] = (), advice: str = FIT_ADVICE, assign: bool = False,
                 map_location="cpu") -> Checkpoint:
    """Read a checkpoint file and load it into `model` exactly; returns the checkpoint (for its extras)."""
    checkpoint = read_checkpoint(path, map_location, what=f"{what} checkpoint", hint=hint, containers=containers,
                                 prefixes=prefixes)
    load_state_dict_exactly(model, checkpoint.state_dict, what, path, optional_suffixes, advice, assign)
    return checkpoint


# ---------------------------------------------------------------------------------------------- reports


@dataclass
class SkippedTensor:
    """A checkpoint tensor deliberately not loaded; the model keeps its fresh initialisation there."""

    key: str
    checkpoint_shape: tuple[int, ...]
    model_shape: tuple[int, ...]
    reason: str


@dataclass
class LoadReport:
    """What loading a checkpoint into a model did: nothing here is silent.

    `missing` are model tensors the checkpoint lacks (they keep their initialisation); `skipped` are
    checkpoint tensors left out on purpose (documented partial-load rules); `unexpected` and
    `mismatched` are always empty on a successful load, because such checkpoints are refused.
    """

    source: str
    global_step: int = 0
    loaded: int = 0
    skipped: list[SkippedTensor] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[SkippedTensor] = field(default_factory=list)
    checkpoint_dtypes: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Every model tensor came from the checkpoint and every checkpoint tensor was used."""
        return bool(self.source) and not (self.skipped or self.missing or self.unexpected or self.mismatched)

    def summary(self) -> str:
        if not self.source:
            return "fresh initialisation (no checkpoint)"
        parts = [f"loaded {self.loaded} tensors from {self.source} (global_step {self.global_step})"]
        if self.skipped:
            parts.append(
                f"skipped {len(self.skipped)} (kept init): "
                + ", ".join(f"{s.key} {list(s.checkpoint_shape)}->{list(s.model_shape)}" for s in self.skipped[:6])
                + (" ..." if len(self.skipped) > 6 else "")
            )
        if self.missing:
            parts.append(f"missing {len(self.missing)} (kept init), e.g. {self.missing[:3]}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}, e.g. {self.unexpected[:3]}")
        if self.mismatched:
            parts.append(f"shape mismatches {len(self.mismatched)}, e.g. {self.mismatched[0].key}")
        parts.extend(self.notes)
        return "; ".join(parts)
