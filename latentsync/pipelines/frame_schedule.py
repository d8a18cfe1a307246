"""Which source video frame each output frame shows, when audio and video lengths differ.

The output follows the audio: it has one frame per 1/fps of audio (rounded up, so the tail is never
dropped), except in `cut_to_shortest`, which stops at whichever ends first, and in `silence`, which keeps
the whole video when it is the longer one (the pipeline then pads the audio with silence to its end).
"""

from __future__ import annotations

import math

import numpy as np

from latentsync.errors import InputError

LENGTH_MODES = ("pingpong", "loop", "cut_to_shortest", "silence")


def num_output_frames(audio_seconds: float, num_video_frames: int, fps: float, length_mode: str) -> int:
    """Length of the lip-synced video in frames."""
    check_length_mode(length_mode)
    audio_frames = max(1, math.ceil(audio_seconds * fps - 1e-6))
    if length_mode == "cut_to_shortest":
        return min(audio_frames, num_video_frames)
    if length_mode == "silence":
        return max(audio_frames, num_video_frames)
    return audio_frames


def source_frame_indices(num_out: int, num_video_frames: int, length_mode: str) -> np.ndarray:
    """Source frame index of every output frame.

    - `pingpong` (official default): forward, then the whole video reversed, then forward again ... —
      exactly the official concatenation `[v, v[::-1], v, ...]`, so the turn-around frame shows twice.
    - `loop`: forward, forward, ...
    - `cut_to_shortest`: forward only (the caller has already limited `num_out`).
    - `silence`: like `pingpong` when the audio is longer; otherwise `num_out` covers the whole video.
    When the audio is shorter than the video, every mode simply plays the first `num_out` frames.
    """
    check_length_mode(length_mode)
    if num_video_frames <= 0:
        raise ValueError("the video has no frames")
    k = np.arange(num_out, dtype=np.int64)
    position = k % num_video_frames
    if length_mode in ("pingpong", "silence"):
        backwards = (k // num_video_frames) % 2 == 1
        return np.where(backwards, num_video_frames - 1 - position, position)
    if length_mode == "cut_to_shortest" and num_out > num_video_frames:
        raise ValueError("cut_to_shortest cannot produce more frames than the video has")
    return position


def check_length_mode(length_mode: str) -> None:
    if length_mode not in LENGTH_MODES:
        raise InputError(f"unknown length_mode {length_mode!r}; choose one of {', '.join(LENGTH_MODES)}")
