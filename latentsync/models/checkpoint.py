"""Reading model checkpoints safely: tensors only, never arbitrary pickled objects.

Official LatentSync checkpoints are `torch.save({"state_dict": ..., "global_step": int})` files (syncnet
ones add loss/step lists). `.safetensors` files hold a flat state dict, with an optional `global_step`
in their metadata. Every failure names the file and says what to do, instead of surfacing a zip or
unpickling traceback.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from latentsync.errors import InputError

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "Checkpoint",
    "LoadReport",
    "SkippedTensor",
    "read_checkpoint",
    "state_dict_shapes",
]

SAFETENSORS_SUFFIXES = (".safetensors",)


class CheckpointError(InputError):
    """A checkpoint file is missing, truncated, corrupt, or not a tensor checkpoint (a bad input file)."""


@dataclass
class Checkpoint:
    """What a checkpoint file holds, normalised: the tensors, the training step, and where it came from."""

    state_dict: dict[str, torch.Tensor]
    global_step: int
    source: str
    extra_keys: tuple[str, ...] = ()  # other top-level entries (e.g. syncnet loss curves), not loaded


def _size_text(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size} bytes"


def _corrupt(path: Path, err: Exception) -> CheckpointError:
    detail = str(err).strip().splitlines()[0] if str(err).strip() else "no detail"
    return CheckpointError(
        f"cannot read checkpoint {path} ({_size_text(path)}): the file is truncated or corrupt "
        f"({type(err).__name__}: {detail}). Re-download it (see checkpoints/README.md) or re-save it."
    )


def _load_torch_file(path: Path, map_location) -> object:
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
            "...}) or a .safetensors file; convert it only if you trust its origin."
        ) from err
    except Exception as err:  # zip/EOF/unpickler errors of truncated or corrupt files
        raise _corrupt(path, err) from err


def _load_safetensors_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as err:
        raise CheckpointError(
            f"cannot read safetensors checkpoint {path} ({_size_text(path)}): the file is truncated or corrupt "
            f"({type(err).__name__}: {err}). Re-download or re-save it."
        ) from err
    return tensors, metadata


def _as_state_dict(obj: object, path: Path) -> tuple[Mapping, object, tuple[str, ...]]:
    """Split a loaded object into (state dict, global_step or None, other top-level keys)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a checkpoint dictionary")
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        extra = tuple(k for k in obj if k not in ("state_dict", "global_step"))
        return obj["state_dict"], obj.get("global_step"), extra
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, None, ()  # a bare state dict (e.g. diffusers or hand-exported weights)
    raise CheckpointError(
        f"{path} is a dictionary without a 'state_dict' entry and is not a flat tensor dictionary either "
        f"(top-level keys: {sorted(map(str, obj))[:8]}); it is not a LatentSync model checkpoint"
    )


def read_checkpoint(path: str | Path, map_location="cpu") -> Checkpoint:
    """Load a `.pt`/`.pth`/`.ckpt` (torch zip or legacy format) or `.safetensors` checkpoint, tensors only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}. Download the weights (see checkpoints/README.md) or fix the path."
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): an interrupted download or save; fetch it again")

    if path.suffix.lower() in SAFETENSORS_SUFFIXES:
        state_dict, metadata = _load_safetensors_file(path)
        step_text = metadata.get("global_step", "0")
        global_step = int(step_text) if step_text.lstrip("-").isdigit() else 0
        return Checkpoint(dict(state_dict), global_step, str(path))

    state_dict, global_step, extra = _as_state_dict(_load_torch_file(path, map_location), path)
    bad = [k for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state_dict entries that are not named tensors: {bad[:5]}")
    if global_step is None:
        global_step = 0
    if isinstance(global_step, torch.Tensor) and global_step.numel() == 1:
        global_step = int(global_step.item())
    if not isinstance(global_step, int):
        raise CheckpointError(f"{path}: global_step is a {type(global_step).__name__}, expected an int")
    return Checkpoint(dict(state_dict), global_step, str(path), extra)


def state_dict_shapes(state_dict: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    """Key -> shape, the structural fingerprint used to compare checkpoints with configs."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}


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
