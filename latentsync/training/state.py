"""Checkpoints and the resume sidecar.

The official single-file checkpoint is written atomically, plus an optional `*.state.pt` sidecar (optimizer,
LR scheduler, grad scaler) for exact resumption; everything loads with weights_only=True.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from latentsync.checkpoint import load_torch_file

logger = logging.getLogger(__name__)

STATE_SUFFIX = ".state.pt"


def atomic_save(obj, path: str | os.PathLike) -> Path:
    """torch.save to a temp file in the same folder, then rename: a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def state_path_for(checkpoint_path: str | os.PathLike) -> Path:
    """Where the resume sidecar of `checkpoint-N.pt` lives: `checkpoint-N.state.pt`."""
    path = Path(checkpoint_path)
    return path.with_name(path.stem + STATE_SUFFIX)


def save_training_state(checkpoint_path, optimizer, lr_scheduler=None, scaler=None, **extra) -> Path:
    """Optimizer / scheduler / scaler states next to the checkpoint, plus plain-data extras (trainable names...)."""
    state = {"optimizer": optimizer.state_dict(), **extra}
    if lr_scheduler is not None:
        state["lr_scheduler"] = lr_scheduler.state_dict()
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return atomic_save(state, state_path_for(checkpoint_path))


def load_training_state(checkpoint_path, expected_names: Sequence[str]) -> dict | None:
    """The sidecar of a checkpoint if it exists and was made for the same trainable parameters, else None.

    A stage-1 checkpoint resumed by a stage-2 config (different trainable set) gives None: the weights are
    loaded, the optimizer starts fresh; the log says so.
    """
    path = state_path_for(checkpoint_path)
    if not path.is_file():
        logger.info("no training state next to %s: optimizer and LR schedule start fresh", checkpoint_path)
        return None
    state = load_torch_file(path, what="training state")
    if list(state.get("trainable_names", [])) != list(expected_names):
        logger.info("training state %s belongs to a different set of trainable parameters (e.g. a stage-1 run): "
                    "weights loaded, optimizer starts fresh", path)
        return None
    return state
