"""Shared plumbing of the training datasets: which clips, reading their frames and audio, skipping bad ones.

Training clips are preprocessed, face-aligned mp4s at 25 fps (the output of data_processing/). A dataset
reads a file list or gathers *.mp4 under a folder. Sampling is a pure function of (seed, epoch, index):
the same sample comes back whatever the number of DataLoader workers or processes, which is what makes a
resumed run continue exactly like an uninterrupted one. A clip that cannot be used (unreadable, too short,
no audio, ...) is logged once with the reason and replaced by another; after `max_attempts` failures in a
row the dataset stops with an error listing the reasons instead of looping forever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from latentsync.config import audio_settings
from latentsync.errors import InputError
from latentsync.utils.audio import mel_window_length
from latentsync.utils.media import MediaError, VideoReader, frame_map, open_video

logger = logging.getLogger(__name__)

VIDEO_SUFFIX = ".mp4"


class ClipUnusable(Exception):
    """This clip cannot give a training sample (the message says why); the dataset tries another."""


# ---------------------------------------------------------------------------------------------- clip lists


def gather_video_paths(root: str | os.PathLike) -> list[str]:
    """All *.mp4 files under `root`, recursively, in sorted order (like the official gatherer)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root} (set data.train_data_dir / val_data_dir)")
    return sorted(str(p) for p in root.rglob(f"*{VIDEO_SUFFIX}") if p.is_file())


def read_fileslist(path: str | os.PathLike) -> list[str]:
    """Clip paths from a file list, one per line (blank lines and '#' comments ignored).

    A relative entry is taken relative to the current folder if it exists there, else to the list's folder.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file list not found: {path} (write one with tools/write_fileslist.py)")
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        entry = Path(line)
        if not entry.is_absolute() and not entry.exists() and (path.parent / entry).exists():
            entry = path.parent / entry
        entries.append(str(entry))
    return entries


def resolve_video_paths(data_dir: str | None, fileslist: str | None) -> list[str]:
    """The clips of a dataset: the file list if given, else the folder; at least one clip is required."""
    if fileslist:
        paths, source = read_fileslist(fileslist), f"file list {fileslist}"
    elif data_dir:
        paths, source = gather_video_paths(data_dir), f"folder {data_dir}"
    else:
        raise InputError("no training data given: set data.train_fileslist (or val_fileslist) or the *_data_dir")
    if not paths:
        raise InputError(f"no {VIDEO_SUFFIX} clips found in {source}; list the clips, one path per line (tools/write_fileslist.py)")
    return paths


# ---------------------------------------------------------------------------------------------- reading


class ClipReader:
    """Random access to the frames of one clip at `fps` (frames are picked by time if the file's rate differs).

    decord's seeks serve random windows fastest (a new ffmpeg child per window cost ~40 % more per sample); a clip
    decord cannot decode, count or serve as ffmpeg shows it (AV1, an edit list, interlaced: `media.open_video`) is
    read with `VideoReader` from ffmpeg alone."""

    def __init__(self, path: str, fps: float):
        self.path = path
        if not Path(path).is_file():
            raise ClipUnusable("file not found")
        try:
            self._reader, info = open_video(os.path.abspath(path))
            self._video = VideoReader(path, target_fps=fps) if self._reader is None else None
        except MediaError as exc:
            raise ClipUnusable(f"cannot decode video ({str(exc).splitlines()[0][:160]})") from None
        if self._video is not None:
            self.indices = self._video.indices
        else:
            self.indices = frame_map(path, fps, info.num_frames, info.fps)

    def __len__(self) -> int:
        return len(self.indices)

    def frames(self, start: int, count: int) -> np.ndarray:
        """Frames [start, start + count) as (count, h, w, 3) RGB uint8."""
        try:
            if self._video is not None:
                return self._video.get_frames(range(start, min(start + count, len(self))))
            return self._reader.get_batch(self.indices[start : start + count].tolist()).asnumpy()
        except Exception as exc:  # decord raises its own error types
            raise ClipUnusable(f"cannot decode frames {start}..{start + count} ({str(exc)[:160]})") from None


def mel_window_fits(num_mel_frames: int, start: int, mel_length: int, fps: float, mel_per_second: float) -> bool:
    """Whether the SyncNet mel crop of the window starting at video frame `start` lies inside the mel."""
    return int(mel_per_second * start / fps) + mel_length <= num_mel_frames


# ---------------------------------------------------------------------------------------------- sampling


class ClipDataset(Dataset):
    """Base class: one sample per index, drawn with an RNG seeded by (seed, epoch, index); bad clips skipped.

    Subclasses implement `load_sample(path, rng) -> dict` and raise `ClipUnusable` for clips they cannot use.
    """

    def __init__(self, video_paths: list[str], seed: int = 0, max_attempts: int = 20):
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.video_paths = list(video_paths)
        self.seed = int(seed)
        self.epoch = 0
        self.max_attempts = int(max_attempts)
        self.unusable: dict[str, str] = {}  # path -> reason, per process

    def _init_from_settings(self, video_paths: list[str], settings) -> None:
        """The part both training datasets share: the clip list, sampling seed and the clip geometry, from a
        trainer's settings (latentsync.training.settings)."""
        data = settings.data
        ClipDataset.__init__(self, video_paths, seed=settings.run.seed, max_attempts=data.max_sample_attempts)
        self.resolution = data.resolution
        self.num_frames = data.num_frames
        self.video_fps = data.video_fps
        self.audio_sample_rate = data.audio_sample_rate
        self.mel_cache_dir = data.audio_mel_cache_dir or None
        self.audio = audio_settings()  # configs/audio.yaml: the SyncNet mel's numbers
        self.mel_window_length = mel_window_length(self.num_frames, self.video_fps, self.audio)

    def __len__(self) -> int:
        return len(self.video_paths)

    def set_epoch(self, epoch: int) -> None:
        """New random windows every epoch; call before iterating (workers copy the dataset at that point)."""
        self.epoch = int(epoch)

    def load_sample(self, path: str, rng: np.random.Generator) -> dict:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, self.epoch)

    def sample(self, index: int, epoch: int) -> dict:
        """Sample `index` of epoch `epoch`; identical on every call with the same arguments."""
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        failures = []
        clip = int(index) % len(self.video_paths)
        for attempt in range(self.max_attempts):
            if attempt:
                clip = int(rng.integers(len(self.video_paths)))
            path = self.video_paths[clip]
            if path in self.unusable:
                failures.append(f"{path}: {self.unusable[path]}")
                continue
            try:
                return self.load_sample(path, rng)
            except ClipUnusable as exc:
                reason = str(exc)
            except Exception as exc:  # corrupt media can fail anywhere in the decoders; keep training going
                reason = f"{type(exc).__name__}: {exc}"
            self.unusable[path] = reason
            failures.append(f"{path}: {reason}")
            logger.warning("skipping clip %s: %s", path, reason)
        raise InputError(
            f"{type(self).__name__}: no usable clip after {self.max_attempts} attempts for sample {index}. "
            f"Reasons (last 5): {failures[-5:]}. Check the file list / data folder."
        )


def read_mel_cached(path: str, cache, compute: Callable[[str], torch.Tensor]) -> torch.Tensor:
    """The clip's SyncNet mel from the content-keyed cache, computing and storing it on a miss."""
    if cache is None:
        return compute(path)
    mel = cache.load(path)
    if mel is None:
        mel = compute(path)
        cache.store(path, mel)
    return mel
