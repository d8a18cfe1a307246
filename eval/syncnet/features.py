"""SyncNet inputs and embeddings: MFCC windows of the audio, 5-frame windows of 224x224 face crops.

Windowing follows syncnet_python `evaluate()`: N = min(frames, samples // 640) - 5 windows; video window v
is frames v..v+4, audio window v is MFCC columns 4v..4v+19.
"""

from __future__ import annotations

import cv2
import numpy as np
import python_speech_features
import torch

from eval.settings import SyncNetProtocol


def float_to_int16_scale(audio: np.ndarray) -> np.ndarray:
    """float32 samples in [-1, 1] -> the int16 values ffmpeg's pcm_s16le would write (MFCCs see int16 scale)."""
    return np.clip(np.rint(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def mfcc_matrix(audio_int16: np.ndarray, sample_rate: int) -> np.ndarray:
    """(13, T) float64 MFCCs with python_speech_features defaults (25 ms window, 10 ms step, c0 = log energy)."""
    audio_int16 = np.asarray(audio_int16)
    if audio_int16.ndim != 1:
        raise ValueError(f"audio must be mono (n,), got shape {audio_int16.shape}")
    return np.ascontiguousarray(python_speech_features.mfcc(audio_int16, sample_rate).T)


def resize_crops(frames_bgr: np.ndarray, size: int) -> np.ndarray:
    """(T, size, size, 3) uint8: every frame resized with cv2's default bilinear filter, as the original does."""
    frames_bgr = np.asarray(frames_bgr)
    if frames_bgr.ndim != 4 or frames_bgr.shape[-1] != 3 or frames_bgr.dtype != np.uint8:
        raise ValueError(f"frames must be (T, h, w, 3) uint8, got {frames_bgr.shape} {frames_bgr.dtype}")
    if frames_bgr.shape[1:3] == (size, size):
        return frames_bgr
    return np.stack([cv2.resize(frame, (size, size)) for frame in frames_bgr])


def num_windows(num_frames: int, num_samples: int, protocol: SyncNetProtocol) -> int:
    """How many 5-frame windows the original evaluates (it drops the last window that would fit)."""
    usable = min(num_frames, num_samples // protocol.samples_per_frame)
    return max(usable - protocol.frames_per_window, 0)


def lip_batch(crops: np.ndarray, starts: range, frames_per_window: int) -> torch.Tensor:
    """(B, 3, 5, H, W) float tensor of pixel values 0..255 for the windows starting at `starts`."""
    windows = np.stack([crops[v : v + frames_per_window] for v in starts])  # (B, 5, H, W, 3)
    return torch.from_numpy(windows).permute(0, 4, 1, 2, 3).float().contiguous()


def audio_batch(mfcc: torch.Tensor, starts: range, protocol: SyncNetProtocol) -> torch.Tensor:
    """(B, 1, 13, 20) MFCC windows for the video windows starting at `starts`."""
    step, width = protocol.mfcc_per_frame, protocol.mfcc_window
    return torch.stack([mfcc[:, v * step : v * step + width] for v in starts]).unsqueeze(1)


@torch.no_grad()
def embed_windows(
    model, crops_bgr: np.ndarray, audio_int16: np.ndarray, protocol: SyncNetProtocol, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Video and audio embeddings (N, fc) of every window, computed in batches of `protocol.batch_size`.

    `crops_bgr` are face crops (BGR uint8, any size: resized to the crop size), `audio_int16` the matching
    16 kHz mono track. Raises ValueError when the clip is shorter than one window.
    """
    crops = resize_crops(crops_bgr, protocol.crop_size)
    count = num_windows(len(crops), len(audio_int16), protocol)
    if count <= 0:
        raise ValueError(
            f"clip too short for SyncNet: {len(crops)} frames and {len(audio_int16)} audio samples give no "
            f"{protocol.frames_per_window}-frame window (need more than {protocol.frames_per_window} frames "
            f"at {protocol.fps} fps with audio)"
        )
    mfcc = torch.from_numpy(mfcc_matrix(audio_int16, protocol.sample_rate)).float()
    video_feats, audio_feats = [], []
    for begin in range(0, count, protocol.batch_size):
        starts = range(begin, min(count, begin + protocol.batch_size))
        video_feats.append(model.forward_lip(lip_batch(crops, starts, protocol.frames_per_window).to(device)).cpu())
        audio_feats.append(model.forward_aud(audio_batch(mfcc, starts, protocol).to(device)).cpu())
    return torch.cat(video_feats), torch.cat(audio_feats)
