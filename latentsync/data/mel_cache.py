"""On-disk cache of SyncNet mel spectrograms, keyed by the clip's content (not its basename).

The official trainer named entries `<basename>_mel.pt`, so two clips called `00001.mp4` in different folders
shared one entry. Here the key is the sha256 of the file's bytes plus the audio settings, so renamed or
moved clips hit the cache and different clips never collide. Storage (atomic safetensors entries, unreadable
ones deleted and recomputed) is `latentsync.utils.content_cache`, shared with the whisper feature cache.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from omegaconf import OmegaConf

from latentsync.utils.content_cache import TensorCache, file_digest

TENSOR_NAME = "mel"
FORMAT_VERSION = 1


class MelCache:
    """A folder of `<key>.safetensors` mel tensors (n_mels, T), looked up by clip path; `audio`: the `audio:`
    settings the mels are computed with (configs/audio.yaml), part of every key."""

    def __init__(self, directory: str | os.PathLike, audio):
        self.entries = TensorCache(directory, TENSOR_NAME, what="mel cache")
        settings = OmegaConf.to_container(audio, resolve=True)
        self._settings = json.dumps({"audio": settings, "format": FORMAT_VERSION}, sort_keys=True)
        self._digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> content digest

    def key(self, path: str | os.PathLike) -> str:
        stat = os.stat(path)
        ident = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if ident not in self._digests:
            self._digests[ident] = file_digest(path)
        return hashlib.sha256((self._digests[ident] + self._settings).encode()).hexdigest()

    def path_for(self, clip_path: str | os.PathLike) -> Path:
        return self.entries.path_for(self.key(clip_path))

    def load(self, clip_path: str | os.PathLike) -> torch.Tensor | None:
        return self.entries.load(self.key(clip_path), (None, None))

    def store(self, clip_path: str | os.PathLike, mel: torch.Tensor) -> Path:
        return self.entries.store(self.key(clip_path), mel)
