"""On-disk cache of whisper features, keyed by content (not by file name).

A key is the sha256 of: the audio's bytes (the file's bytes, or the samples of an array), the model's
identity (the checkpoint file's sha256) and every option that changes the result (dtype, boundary option,
format version). Entries are safetensors files written to a temp name and moved into place with
os.replace, so a reader never sees half a file; an unreadable entry is deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

logger = logging.getLogger(__name__)

TENSOR_NAME = "features"
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


def cache_key(audio_digest: str, model_digest: str, options: dict) -> str:
    """One hex key for audio content + model + options (options as sorted JSON)."""
    payload = json.dumps({"audio": audio_digest, "model": model_digest, "options": options}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class FeatureCache:
    """A folder of `<key>.safetensors` feature tensors."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        return self.directory / f"{key}.safetensors"

    def load(self, key: str, expect_trailing_shape: tuple[int, int]) -> torch.Tensor | None:
        """The cached (T, L+1, D) tensor, or None when absent; a corrupt or mismatched entry is removed."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            features = load_file(path)[TENSOR_NAME]
            if features.ndim != 3 or tuple(features.shape[1:]) != tuple(expect_trailing_shape):
                raise ValueError(f"shape {tuple(features.shape)}, expected (T, *{expect_trailing_shape})")
        except Exception as exc:  # truncated file, wrong format, wrong shape: recompute instead of failing
            logger.warning("ignoring unreadable whisper feature cache entry %s (%s); recomputing", path, exc)
            path.unlink(missing_ok=True)
            return None
        return features

    def store(self, key: str, features: torch.Tensor) -> Path:
        """Write atomically: temp file in the same folder, then os.replace."""
        path = self.path_for(key)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=self.directory)
        os.close(fd)
        try:
            save_file({TENSOR_NAME: features.detach().cpu().contiguous()}, tmp_name)
            os.replace(tmp_name, path)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
        return path
