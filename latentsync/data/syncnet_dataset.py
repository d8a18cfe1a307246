"""SyncNet training pairs: 16 aligned face frames and a SyncNet mel window, in sync (y=1) or not (y=0).

As in the official `SyncNetDataset`: the mel window always belongs to a random start frame; with
probability 1/2 the frames come from that same start (positive), otherwise from a different start of the
same clip (negative). Frames are (F, 3, H, W) in [-1, 1]; the mel window is (1, 80, 52) for 16 frames at
25 fps, starting at mel frame int(80 · start / 25). The lower half of the face and the
`b f c h w -> b (f c) h w` stacking happen in `syncnet_visual_input`, after the optional VAE encoding
(`latent_space` configs), exactly where the official trainer does them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from einops import rearrange

from latentsync.data.clips import (
    ClipDataset,
    ClipReader,
    ClipUnusable,
    mel_window_fits,
    read_mel_cached,
    resolve_video_paths,
)
from latentsync.data.mel_cache import MelCache
from latentsync.pipelines.conditioning import pixel_values
from latentsync.utils.audio import crop_mel_window, mel_frames_per_second, melspectrogram
from latentsync.utils.media import read_audio

if TYPE_CHECKING:
    from latentsync.training.settings import SyncNetTrainingSettings


def syncnet_visual_input(frames: torch.Tensor, lower_half: bool) -> torch.Tensor:
    """(b, f, c, h, w) frames or latents -> (b, f*c, h', w') SyncNet input, keeping rows [h//2:] if lower_half."""
    stacked = rearrange(frames, "b f c h w -> b (f c) h w")
    if lower_half:
        stacked = stacked[:, :, stacked.shape[2] // 2 :, :]
    return stacked


def compute_mel(path: str, sample_rate: int, audio) -> torch.Tensor:
    """SyncNet mel (80, T) of a clip's audio track (float64, as the official cache holds it); `audio`: the
    `audio:` settings (configs/audio.yaml)."""
    try:
        samples = read_audio(path, sample_rate=sample_rate)
    except Exception as exc:
        raise ClipUnusable(f"no usable audio ({exc})") from None
    return torch.from_numpy(melspectrogram(samples, audio))


def valid_starts(num_frames_in_clip: int, num_mel: int, window: int, fps: float, mel_length: int,
                 audio) -> np.ndarray:
    """Start frames whose video window and mel window both lie inside the clip (`audio`: the mel settings)."""
    starts = np.arange(max(0, num_frames_in_clip - window + 1))
    per_second = mel_frames_per_second(audio)
    return np.array([s for s in starts if mel_window_fits(num_mel, s, mel_length, fps, per_second)], dtype=np.int64)


class SyncNetDataset(ClipDataset):
    """`SyncNetDataset(data_dir, fileslist, settings)` with the official argument order; the file list wins.
    `settings`: SyncNetTrainingSettings."""

    def __init__(self, data_dir: str, fileslist: str, settings):
        self._init_from_settings(resolve_video_paths(data_dir, fileslist), settings)
        self._mel_cache = None

    def read_mel(self, path: str) -> torch.Tensor:
        if self._mel_cache is None and self.mel_cache_dir:
            self._mel_cache = MelCache(self.mel_cache_dir, self.audio)
        return read_mel_cached(path, self._mel_cache, lambda p: compute_mel(p, self.audio_sample_rate, self.audio))

    def crop_audio_window(self, mel: torch.Tensor, start_index: int) -> torch.Tensor:
        """(1, 80, 52) mel window of video frames [start_index, start_index + num_frames)."""
        return crop_mel_window(mel, start_index, self.num_frames, self.video_fps, self.audio)

    def load_sample(self, path: str, rng: np.random.Generator) -> dict:
        reader = ClipReader(path, self.video_fps)
        if len(reader) < 2 * self.num_frames:
            raise ClipUnusable(f"only {len(reader)} frames, need at least {2 * self.num_frames}")
        mel = self.read_mel(path)
        starts = valid_starts(len(reader), mel.shape[-1], self.num_frames, self.video_fps, self.mel_window_length,
                              self.audio)
        if len(starts) < 2:
            raise ClipUnusable(f"audio ({mel.shape[-1]} mel frames) too short for two {self.num_frames}-frame windows")
        start = int(rng.choice(starts))
        positive = bool(rng.integers(2))
        if positive:
            frame_start = start
        else:  # any other start of the same clip, video window only (the mel stays at `start`)
            others = np.arange(len(reader) - self.num_frames + 1)
            frame_start = int(rng.choice(others[others != start]))
        frames = pixel_values(reader.frames(frame_start, self.num_frames), self.resolution)
        return {
            "frames": frames.float(),
            "audio_samples": self.crop_audio_window(mel, start).float(),
            "y": torch.ones(1) if positive else torch.zeros(1),
            "video_path": path,
            "start_idx": start,
        }


class FrameEncoder:
    """Turns (b, f, 3, h, w) pixel windows into the SyncNet's visual input (optionally through the VAE).

    Shared by SyncNet training and `eval/eval_syncnet_acc.py`, so both see the same input."""

    def __init__(self, settings: SyncNetTrainingSettings, device):
        self.lower_half = settings.data.lower_half
        self.vae = None
        self.max_frames = settings.run.validation_max_frames
        if settings.data.latent_space:
            from diffusers import AutoencoderKL

            self.vae = AutoencoderKL.from_pretrained(settings.ckpt.vae_path).requires_grad_(False).to(device)
            self.scaling = settings.run.vae_scaling_factor

    @torch.no_grad()
    def _latents(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, f = frames.shape[:2]
        flat = rearrange(frames, "b f c h w -> (b f) c h w").to(self.vae.dtype)
        parts = []
        for chunk in flat.split(self.max_frames):  # bounded memory, as the official 640-frame chunks
            dist = self.vae.encode(chunk).latent_dist
            noise = torch.randn(dist.mean.shape, generator=generator).to(dist.mean)
            parts.append((dist.mean + dist.std * noise) * self.scaling)
        return rearrange(torch.cat(parts), "(b f) c h w -> b f c h w", b=b, f=f).float()

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.vae is not None:
            frames = self._latents(frames, generator)
        return syncnet_visual_input(frames, self.lower_half)
