"""Per-video-frame windows of whisper features, with the official index arithmetic, as index arrays.

Video frame i at `fps` is centred on feature int(i · 50 / fps); it sees features
[centre − 2·a0, centre + 2·(a1 + 1)) (10 for audio_feat_length [2, 2]), each clamped to [0, T − 1], so the
ends repeat the first/last feature. Rows are time-major, layer-minor: row j·(L+1) + l is time step j, layer l.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from whisper.audio import HOP_LENGTH, SAMPLE_RATE

FEATURES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH // 2  # 50: one feature per two log-mel frames


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
