"""On-disk caches of computed tensors, keyed by content (not by file name).

One implementation for both caches: the whisper features (`latentsync.whisper.audio2feature`) and the SyncNet
mel (`latentsync.data.mel_cache`); this module imports neither whisper nor the datasets.

A key is a sha256 of what determines the tensor: the input's content (a file's bytes, or the samples of an
array) and everything else that changes the result (model identity, settings, a format version). Entries
are `<key>.safetensors` files written to a temp name in the same folder and moved into place with
os.replace, so a reader never sees half a file; an unreadable entry is deleted and the caller recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

logger = logging.getLogger(__name__)

READ_CHUNK_BYTES = 1 << 22


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def array_digest(samples: np.ndarray) -> str:
    """sha256 of a waveform's float32 samples."""
    return hashlib.sha256(np.ascontiguousarray(samples, dtype=np.float32).tobytes()).hexdigest()


def content_key(**parts) -> str:
    """One hex key for the named parts (digests, options), hashed as sorted JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class TensorCache:
    """A folder of `<key>.safetensors` files, each holding one tensor under `tensor_name`.

    `what` names the cache in the warning logged when an entry is unreadable.
    """

    def __init__(self, directory: str | os.PathLike, tensor_name: str, what: str = "tensor cache"):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tensor_name = tensor_name
        self.what = what

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def load(self, key: str, shape: Sequence[int | None]) -> torch.Tensor | None:
        """The cached tensor, or None when absent. `shape` is the expected shape, None for any size on an axis;
        an entry that cannot be read or has another shape is removed (and None returned)."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            tensor = load_file(path)[self.tensor_name]
            if tensor.ndim != len(shape) or any(n not in (None, m) for n, m in zip(shape, tensor.shape, strict=True)):
                raise ValueError(f"shape {tuple(tensor.shape)}, expected {tuple(shape)}")
        except Exception as exc:  # truncated file, wrong format, wrong shape: recompute instead of failing
            logger.warning("ignoring unreadable %s entry %s (%s); recomputing", self.what, path, exc)
            path.unlink(missing_ok=True)
            return None
        return tensor

    def store(self, key: str, tensor: torch.Tensor) -> Path:
        """Write atomically: temp file in the same folder, then os.replace."""
        path = self.path_for(key)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        try:
            save_file({self.tensor_name: tensor.detach().cpu().contiguous()}, tmp_name)
            os.replace(tmp_name, path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        return path
