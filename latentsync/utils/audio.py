"""SyncNet's audio input: the Wav2Lip-style mel spectrogram and its per-clip crop.

All numbers (n_fft, hop, mel range, normalisation) come from the `audio:` section of `configs/audio.yaml`, the
official values; every function takes that section as `cfg`, which the callers pass
(`latentsync.config.audio_settings()` reads the packaged file once), so a caller can run with other values.
The result matches the official `latentsync/utils/audio.py melspectrogram` (float64, values in [-4, 4]).
`AudioInputError` lives here too so every stage that reads audio can raise and catch the same type.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from latentsync.utils.media import MediaError


class AudioInputError(MediaError):
    """Audio that cannot be used: missing file, no audio stream, too short, wrong shape. The message says which."""


def mel_frames_per_second(cfg) -> float:
    """SyncNet mel frames per second of audio (80 for 16 kHz with hop 200)."""
    return cfg.sample_rate / _hop_size(cfg)


def _hop_size(cfg) -> int:
    if cfg.hop_size is not None:
        return int(cfg.hop_size)
    return int(cfg.frame_shift_ms / 1000 * cfg.sample_rate)


@cache
def _mel_basis(sample_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-style mel filterbank, (num_mels, 1 + n_fft // 2).

    Kept in float32, librosa's default dtype and what the official code used: a float64 filterbank changes
    the mel by up to 5e-8 (relative 3e-3 on near-zero entries), float32 matches the golden to 1e-15.
    """
    import librosa

    if fmax > sample_rate // 2:
        raise ValueError(f"fmax {fmax} is above the Nyquist frequency of {sample_rate} Hz (configs/audio.yaml)")
    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin, fmax=fmax, dtype=np.float32)


def _preemphasis(wav: np.ndarray, k: float) -> np.ndarray:
    """y[n] = x[n] - k·x[n-1] (with x[-1] = 0), in float64 as scipy.signal.lfilter gives it."""
    x = np.asarray(wav, dtype=np.float64)
    y = x.copy()
    y[1:] -= k * x[:-1]
    return y


def _normalize(db: np.ndarray, cfg) -> np.ndarray:
    """Map dB in [min_level_db, 0] to [-max_abs, max_abs] (symmetric) or [0, max_abs], clipping if allowed."""
    scaled = (db - cfg.min_level_db) / (-cfg.min_level_db)
    if cfg.symmetric_mels:
        out, low = 2 * cfg.max_abs_value * scaled - cfg.max_abs_value, -cfg.max_abs_value
    else:
        out, low = cfg.max_abs_value * scaled, 0.0
    if cfg.allow_clipping_in_normalization:
        return np.clip(out, low, cfg.max_abs_value)
    if db.max() > 0 or db.min() < cfg.min_level_db:
        raise ValueError("mel dB values fall outside [min_level_db, 0] and clipping is disabled in configs/audio.yaml")
    return out


def melspectrogram(wav: np.ndarray, cfg) -> np.ndarray:
    """SyncNet mel of a 16 kHz mono waveform: (num_mels, 1 + len(wav) // hop) float64, values in [-4, 4]."""
    import librosa

    if cfg.use_lws:
        raise NotImplementedError("use_lws: true is not supported (the official configs use librosa's STFT)")
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise AudioInputError(f"melspectrogram expects a mono 1-D waveform, got shape {wav.shape}")
    if cfg.preemphasize:
        wav = _preemphasis(wav, cfg.preemphasis)
    spec = librosa.stft(y=wav, n_fft=cfg.n_fft, hop_length=_hop_size(cfg), win_length=cfg.win_size)
    mel = _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.num_mels, cfg.fmin, cfg.fmax) @ np.abs(spec)
    min_level = np.exp(cfg.min_level_db / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, mel)) - cfg.ref_level_db
    if cfg.signal_normalization:
        return _normalize(db, cfg)
    return db


def mel_window_length(num_frames: int, fps: float, cfg) -> int:
    """Mel frames covering `num_frames` video frames: ceil(num_frames · 80 / fps), i.e. 52 for 16 frames at 25 fps."""
    return math.ceil(num_frames * mel_frames_per_second(cfg) / fps)


def crop_mel_window(mel, start_index: int, num_frames: int, fps: float, cfg):
    """The mel slice SyncNet sees for video frames [start_index, start_index + num_frames), shape (1, n_mels, 52).

    Same arithmetic as the official `SyncNetDataset.crop_audio_window`: start = int(80 · start_index / fps).
    Works on numpy arrays and torch tensors. Near the end the slice is shorter; callers skip such clips.
    """
    start = int(mel_frames_per_second(cfg) * start_index / fps)
    return mel[None, :, start : start + mel_window_length(num_frames, fps, cfg)]
