"""Which 30 s encoder windows to run, and how each output feature is read from them.

Official scheme (the default): windows start every 3000 log-mel frames (30 s); the last one is zero-padded;
feature t (50 per second) is window t // 1500 at position t % 1500. There are n_mel_frames // 2 features.

Boundary option: the features on either side of a 30 s boundary come from different windows, one with no
right context and one with no left context (and the positional embedding jumps from 1499 to 0), so the
features jump there. An extra window centred on each boundary is run, and within `half_width` features of
the boundary each feature is a cross-fade: weight 1 - |t - b| / half_width on the centred window (all of it
at the boundary) and the rest on the official window (all of it at the zone's edges). The result is
continuous, and every feature outside the zones is bit-identical to the official one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from whisper.audio import N_FRAMES

MEL_FRAMES_PER_FEATURE = 2  # conv2 has stride 2


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
