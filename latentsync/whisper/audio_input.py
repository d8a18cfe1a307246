"""Turning what callers pass (a media path or a waveform array) into 16 kHz mono float32 for whisper."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from whisper.audio import SAMPLE_RATE

from latentsync.utils.audio import AudioInputError
from latentsync.utils.media import MediaError, read_audio

MAX_CHANNELS = 16  # a 2-D array with an axis this small is (samples, channels) or (channels, samples)


def load_waveform(audio) -> np.ndarray:
    """Mono float32 samples at 16 kHz from a path (any container/rate/channel count, via ffmpeg) or an array.

    Arrays must already be at 16 kHz; int16 arrays are scaled by 1/32768, 2-D arrays are averaged over channels.
    """
    if isinstance(audio, (str, os.PathLike)):
        return _read_file(Path(audio))
    return _from_array(audio)


def _read_file(path: Path) -> np.ndarray:
    if not path.exists():
        raise AudioInputError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioInputError(f"expected an audio or video file, got a folder: {path}")
    try:
        return read_audio(path, sample_rate=SAMPLE_RATE)
    except AudioInputError:
        raise
    except MediaError as exc:
        raise AudioInputError(str(exc)) from None


def _from_array(audio) -> np.ndarray:
    if hasattr(audio, "detach"):  # a torch tensor
        audio = audio.detach().cpu().numpy()
    samples = np.asarray(audio)
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / 32768.0
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioInputError(f"audio array must be float (or int16 PCM), got dtype {samples.dtype}")
    if samples.ndim == 2 and min(samples.shape) <= MAX_CHANNELS:
        samples = samples.mean(axis=int(np.argmin(samples.shape)))
    if samples.ndim != 1:
        raise AudioInputError(
            f"audio array must be mono (n,) or (n, channels) at {SAMPLE_RATE} Hz, got shape {samples.shape}"
        )
    samples = np.ascontiguousarray(samples, dtype=np.float32)
    if not np.all(np.isfinite(samples)):
        raise AudioInputError("audio array contains NaN or infinite samples")
    return samples
