"""Safe loading of the auxiliary checkpoints: tensors only, never arbitrary pickled objects.

`torch.load(weights_only=True)` and safetensors cannot run code hidden in a file. A checkpoint that is a
pickled *model object* (not a state dict) is refused with instructions to convert it once, in an
environment the user trusts.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path

import torch

from latentsync.errors import InputError

WRAPPER_KEYS = ("state_dict", "model", "module")


class CheckpointError(InputError, RuntimeError):
    """A checkpoint is missing, unsafe to load, or does not fit the model."""


CONVERSION_HINT = (
    "It is not a plain state dict (it probably pickles a whole model object), and loading it would mean "
    "running code from the file, which this project never does. Convert it once, in an environment you "
    "trust that has the original model class importable, e.g.\n"
    "    python -c \"import torch; m = torch.load('{path}', weights_only=False); "
    "sd = m.state_dict() if hasattr(m, 'state_dict') else m; "
    "torch.save({{k: v for k, v in sd.items()}}, '{stem}.pt')\"\n"
    "or save it with safetensors.torch.save_file(sd, '{stem}.safetensors'); then pass the new file."
)


def read_tensor_file(path: str | Path, what: str) -> dict:
    """Load a `.safetensors` file or a torch.save'd dict of tensors, refusing pickled objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as error:
        hint = CONVERSION_HINT.format(path=path, stem=path.with_suffix(""))
        raise CheckpointError(f"cannot load {what} checkpoint {path} safely: {error}\n{hint}") from error
    if not isinstance(loaded, Mapping):
        hint = CONVERSION_HINT.format(path=path, stem=path.with_suffix(""))
        raise CheckpointError(f"{what} checkpoint {path} holds a {type(loaded).__name__}, not a dict.\n{hint}")
    return dict(loaded)


def unwrap_state_dict(loaded: Mapping, prefixes: tuple[str, ...] = ()) -> dict:
    """Take the state dict out of common wrappers ({'state_dict': ...}) and strip known key prefixes."""
    for key in WRAPPER_KEYS:
        if key in loaded and isinstance(loaded[key], Mapping):
            loaded = loaded[key]
            break
    state = {}
    for key, value in loaded.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        state[key] = value
    return state


def load_into(model: torch.nn.Module, state: Mapping, what: str, path: str | Path, optional_suffixes=()) -> None:
    """Copy `state` into `model`, failing loudly on unknown, missing or mis-shaped tensors.

    Keys ending in one of `optional_suffixes` (e.g. BatchNorm's `num_batches_tracked`) may be absent.
    """
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    missing = sorted(k for k in set(own) - set(state) if not k.endswith(tuple(optional_suffixes)))
    wrong = sorted(k for k in set(state) & set(own) if tuple(state[k].shape) != tuple(own[k].shape))
    if unexpected or missing or wrong:
        details = []
        if unexpected:
            details.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if missing:
            details.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if wrong:
            shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong[:3]]
            details.append(f"shape mismatches {shapes}")
        raise CheckpointError(
            f"{what} checkpoint {path} does not fit the model: {'; '.join(details)}. "
            "Check that the file is the right model (see docs/evaluation.md for the expected layout)."
        )
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)
