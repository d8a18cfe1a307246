"""On-disk cache of SyncNet mel spectrograms, keyed by the clip's content (not its basename).

The official trainer named entries `<basename>_mel.pt`, so two clips called `00001.mp4` in different folders
shared one entry. Here the key is the sha256 of the file's bytes plus the audio settings, so renamed or
moved clips hit the cache and different clips never collide. Entries are safetensors written to a temp
file and renamed into place; an unreadable entry is deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file, save_file

from latentsync.utils.audio import audio_config
from latentsync.whisper.cache import file_digest

logger = logging.getLogger(__name__)

TENSOR_NAME = "mel"
FORMAT_VERSION = 1


class MelCache:
    """A folder of `<key>.safetensors` mel tensors (n_mels, T)."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        settings = OmegaConf.to_container(audio_config(), resolve=True)
        self._settings = json.dumps({"audio": settings, "format": FORMAT_VERSION}, sort_keys=True)
        self._digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> content digest

    def key(self, path: str | os.PathLike) -> str:
        stat = os.stat(path)
        ident = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        if ident not in self._digests:
            self._digests[ident] = file_digest(path)
        return hashlib.sha256((self._digests[ident] + self._settings).encode()).hexdigest()

    def path_for(self, clip_path: str | os.PathLike) -> Path:
        return self.directory / f"{self.key(clip_path)}.safetensors"

    def load(self, clip_path: str | os.PathLike) -> torch.Tensor | None:
        entry = self.path_for(clip_path)
        if not entry.is_file():
            return None
        try:
            mel = load_file(entry)[TENSOR_NAME]
            if mel.ndim != 2:
                raise ValueError(f"expected a 2-D mel, got shape {tuple(mel.shape)}")
            return mel
        except Exception as exc:
            logger.warning("ignoring unreadable mel cache entry %s (%s); recomputing", entry, exc)
            entry.unlink(missing_ok=True)
            return None

    def store(self, clip_path: str | os.PathLike, mel: torch.Tensor) -> Path:
        entry = self.path_for(clip_path)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".mel-", suffix=".tmp")
        os.close(fd)
        try:
            save_file({TENSOR_NAME: mel.contiguous()}, tmp)
            os.replace(tmp, entry)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return entry
