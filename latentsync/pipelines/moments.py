"""The VAE posterior moments of each source frame, computed once and reused for every output frame showing it.

A frame shown again (ping-pong and loop when the audio is longer, duplicated frames after a frame-rate change) has
the same aligned crop, so the same reference and masked images and the same posterior moments: they are encoded
once (`conditioning.posterior_moments`, one frame per encoder call so the numbers do not depend on the neighbours)
and only the posterior *sample* is drawn per output frame from the run's generator, so the output is exactly that
of encoding every time. Per frame the moments are small ((2, 2, 4, h, w): [masked, reference] x [mean, std], 64 kB
at 256 px in fp32); they are kept in memory up to a budget, then in files in a private folder next to the output,
removed at the end, and let go after the last output frame that shows them. With the reuse cache across runs
(`prepared_video.py`) the store also reads a prepared video's moments when a crop first comes up, and hands every
newly encoded crop to the recorder that writes them out for the next run: nothing is held for the whole video, so
memory stays flat in the video's length.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file


def last_uses(schedule: np.ndarray) -> dict[int, int]:
    """Source frame -> the last output index that shows it."""
    return {int(source): index for index, source in enumerate(schedule.tolist())}


def crop_key(face: torch.Tensor) -> str:
    """The content key of an aligned face crop: the moments depend on nothing else within a run (the mask is fixed),
    so two frames with the same crop (a frame shown again, a frame duplicated by a frame-rate change) share them."""
    return hashlib.blake2b(face.detach().cpu().contiguous().numpy().tobytes(), digest_size=16).hexdigest()


class FrameMoments:
    """Moments per crop key (`crop_key`): `recall` / `put` / `get` / `release`, in memory up to `memory_bytes`, then
    spilled to files in a temp folder under `spill_parent` (made on first spill). `prepared`: a prepared video's
    moments (`PreparedMoments`) to recall crops from; `recorder`: a `MomentsRecorder` that gets every crop for the
    reuse cache. `encoded` counts frames encoded and put, `reused` the reads (one per edited output frame)."""

    def __init__(self, memory_bytes: int, spill_parent: str | Path, prepared=None, recorder=None):
        self.memory_bytes = memory_bytes
        self.spill_parent = Path(spill_parent)
        self.prepared = prepared
        self.recorder = recorder
        self._memory: dict[str, torch.Tensor] = {}
        self._spilled: set[str] = set()
        self._folder: Path | None = None
        self.bytes_in_memory = 0
        self.encoded = 0
        self.reused = 0

    def __contains__(self, key: str) -> bool:
        return key in self._memory or key in self._spilled

    def recall(self, key: str) -> bool:
        """Whether the crop's moments are at hand: kept in this run, or read now from the prepared video."""
        if key in self:
            return True
        moments = self.prepared.get(key) if self.prepared is not None else None
        if moments is None:
            return False
        self.put(key, moments, fresh=False)
        if self.recorder is not None:
            self.recorder.reference(key, self.prepared.shard_of(key))
        return True

    def put(self, key: str, moments: torch.Tensor, fresh: bool = True) -> None:
        """Keep a crop's moments (on the CPU). `fresh`: they were just encoded (they go to the recorder too)."""
        moments = moments.detach().to("cpu").contiguous()
        if fresh and self.recorder is not None:
            self.recorder.add(key, moments)
        size = moments.numel() * moments.element_size()
        if self.bytes_in_memory + size <= self.memory_bytes:
            self._memory[key] = moments
            self.bytes_in_memory += size
        else:
            save_file({"moments": moments}, self._spill_folder() / f"{key}.safetensors")
            self._spilled.add(key)
        self.encoded += int(fresh)

    def get(self, key: str) -> torch.Tensor:
        self.reused += 1
        if key in self._memory:
            return self._memory[key]
        return load_file(self._spill_folder() / f"{key}.safetensors")["moments"]

    def release(self, key: str) -> None:
        """The crop is not shown again: let its moments go."""
        moments = self._memory.pop(key, None)
        if moments is not None:
            self.bytes_in_memory -= moments.numel() * moments.element_size()
        elif key in self._spilled:
            self._spilled.discard(key)
            (self._spill_folder() / f"{key}.safetensors").unlink(missing_ok=True)

    def _spill_folder(self) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix=".latentsync-moments-", dir=self.spill_parent))
        return self._folder

    def close(self) -> None:
        self._memory.clear()
        self._spilled.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
