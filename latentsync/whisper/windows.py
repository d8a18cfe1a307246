"""Whisper feature timing: which 30 s encoder windows to run, and which features each video frame sees.

Official scheme (the default): windows start every 3000 log-mel frames (30 s); the last one is zero-padded;
feature t (50 per second) is window t // 1500 at position t % 1500. There are n_mel_frames // 2 features.

Boundary option: the features on either side of a 30 s boundary come from different windows, one with no
right context and one with no left context (and the positional embedding jumps from 1499 to 0), so the
features jump there. An extra window centred on each boundary is run, and within `half_width` features of
the boundary each feature is a cross-fade: weight 1 - |t - b| / half_width on the centred window (all of it
at the boundary) and the rest on the official window (all of it at the zone's edges). The result is
continuous, and every feature outside the zones is bit-identical to the official one.

Per-video-frame windows, with the official index arithmetic, as index arrays: video frame i at `fps` is
centred on feature int(i · 50 / fps); it sees features [centre − 2·a0, centre + 2·(a1 + 1)) (10 for
audio_feat_length [2, 2]), each clamped to [0, T − 1], so the ends repeat the first/last feature. Rows are
time-major, layer-minor: row j·(L+1) + l is time step j, layer l.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from whisper.audio import HOP_LENGTH, N_FRAMES, SAMPLE_RATE

MEL_FRAMES_PER_FEATURE = 2  # conv2 has stride 2
FEATURES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH // MEL_FRAMES_PER_FEATURE  # 50


@dataclass(frozen=True)
class WindowPlan:
    """Run windows starting at log-mel frames `starts`; output feature `feature[r]` accumulates
    `weight[r]` x (window `window[r]`, position `position[r]`) over all reads r."""

    starts: np.ndarray
    num_features: int
    feature: np.ndarray
    window: np.ndarray
    position: np.ndarray
    weight: np.ndarray


def num_features(num_mel_frames: int) -> int:
    """Output length of the official scheme: each window keeps int(frames_in_window / 2) features."""
    return num_mel_frames // MEL_FRAMES_PER_FEATURE


def official_plan(num_mel_frames: int, window_frames: int = N_FRAMES) -> WindowPlan:
    """Back-to-back windows at 0, 3000, 6000, ... mel frames (whisper's `transcribe` seek loop)."""
    per_window = window_frames // MEL_FRAMES_PER_FEATURE
    t = np.arange(num_features(num_mel_frames), dtype=np.int64)
    starts = np.arange(-(-num_mel_frames // window_frames), dtype=np.int64) * window_frames
    return WindowPlan(starts, len(t), t, t // per_window, t % per_window, np.ones(len(t)))


def boundary_centred_plan(num_mel_frames: int, half_width: int, window_frames: int = N_FRAMES) -> WindowPlan:
    """Official windows, cross-faded into a window centred on each 30 s boundary within `half_width` features."""
    per_window = window_frames // MEL_FRAMES_PER_FEATURE
    if not 0 < half_width <= per_window // 2:
        raise ValueError(f"half_width must be in 1..{per_window // 2} features, got {half_width}")
    base = official_plan(num_mel_frames, window_frames)
    boundaries = np.arange(1, len(base.starts), dtype=np.int64) * per_window  # in features
    boundaries = boundaries[boundaries < base.num_features]  # only boundaries with features on both sides
    if len(boundaries) == 0:
        return base
    t = base.feature
    nearest = np.clip((t + per_window // 2) // per_window, 1, len(boundaries)) - 1  # index into boundaries
    offset = t - boundaries[nearest]
    in_zone = np.abs(offset) < half_width
    centred_weight = np.where(in_zone, 1.0 - np.abs(offset) / half_width, 0.0)
    zone = np.flatnonzero(in_zone)
    return WindowPlan(
        starts=np.concatenate([base.starts, (boundaries - per_window // 2) * MEL_FRAMES_PER_FEATURE]),
        num_features=base.num_features,
        feature=np.concatenate([t, zone]),
        window=np.concatenate([base.window, len(base.starts) + nearest[zone]]),
        position=np.concatenate([base.position, offset[zone] + per_window // 2]),
        weight=np.concatenate([1.0 - centred_weight, centred_weight[zone]]),
    )


# ------------------------------------------------------------------------------------- per video frame


def window_offsets(audio_feat_length: Sequence[int]) -> np.ndarray:
    """Feature offsets around a frame's centre: -2·a0 .. 2·(a1+1) - 1."""
    left, right = audio_feat_length
    return np.arange(-2 * left, 2 * (right + 1), dtype=np.int64)


def frame_feature_indices(
    num_features: int, frame_indices, fps: float, audio_feat_length: Sequence[int]
) -> np.ndarray:
    """(N, 2·(a0+a1+1)) clamped feature indices for each video frame index."""
    if num_features <= 0:
        raise ValueError("no whisper features to slice (the audio is empty)")
    frames = np.asarray(frame_indices, dtype=np.int64).reshape(-1)
    centres = (frames * FEATURES_PER_SECOND / fps).astype(np.int64)  # int(i * 50 / fps), as the official code
    return np.clip(centres[:, None] + window_offsets(audio_feat_length)[None, :], 0, num_features - 1)


def gather_frames(feature_array: torch.Tensor, indices: np.ndarray) -> torch.Tensor:
    """(T, L+1, D) features and (N, K) indices -> (N, K·(L+1), D), time-major / layer-minor rows."""
    feature_array = torch.as_tensor(feature_array)
    picked = feature_array[torch.from_numpy(indices).to(feature_array.device)]  # (N, K, L+1, D)
    return picked.reshape(indices.shape[0], -1, feature_array.shape[-1])


def num_chunks(num_features: int, fps: float) -> int:
    """How many frames `feature2chunks` yields: the official loop appends frame i and stops after the first
    i with int(i · 50.0/fps) > T, i.e. floor(T/2) + 2 frames at 25 fps (the last ones fully clamped)."""
    step = FEATURES_PER_SECOND / fps
    candidates = np.arange(int((num_features + 1) / step) + 3, dtype=np.int64)
    beyond = (candidates * step).astype(np.int64) > num_features
    return int(np.argmax(beyond)) + 1
