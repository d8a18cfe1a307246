"""U-Net training samples: a 16-frame ground-truth window, its masked copy, a non-overlapping reference window,
the SyncNet mel window and the Whisper embeddings of the same frames.

Follows the official `UNetDataset`: clips need at least 3 x 16 frames; the reference window starts at
least 16 frames away from the ground truth, so the U-Net cannot copy the mouth from it and must take it
from the audio. Pixel tensors are (F, 3, H, W) in [-1, 1], masks (F, 1, H, W) with 1 = keep, 0 = regenerate.
`mel` (1, 80, 52) is present when the sync loss is on; `audio_embeds` (F, 10·(L+1), D) when the U-Net has
audio layers, computed by the audio front-end (`Audio2Feature`, content-keyed cache) on the CPU.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from latentsync.data.clips import ClipDataset, ClipReader, ClipUnusable, read_mel_cached, resolve_video_paths
from latentsync.data.mel_cache import MelCache
from latentsync.data.syncnet_dataset import compute_mel, valid_starts
from latentsync.faces.settings import load_faces_config
from latentsync.pipelines.conditioning import load_fixed_mask, masked_images, pixel_values
from latentsync.utils.audio import crop_mel_window


def reference_starts(num_frames_in_clip: int, window: int, gt_start: int) -> np.ndarray:
    """Reference window starts that do not overlap the ground-truth window [gt_start, gt_start + window)."""
    starts = np.arange(num_frames_in_clip - window + 1)
    return starts[np.abs(starts - gt_start) >= window]


class UNetDataset(ClipDataset):
    """`UNetDataset(train_data_dir, settings)` as in the official code; `data.train_fileslist` wins.
    `settings`: UNetTrainingSettings."""

    def __init__(self, train_data_dir: str, settings, fileslist: str | None = None):
        data = settings.data
        fileslist = data.train_fileslist if fileslist is None else fileslist
        self._init_from_settings(resolve_video_paths(train_data_dir, fileslist), settings)
        self.mask_image_path = data.mask_image_path
        self.load_mel = settings.sync_loss
        self.load_audio_embeds = settings.audio_layers
        self.audio_embeds_cache_dir = data.audio_embeds_cache_dir or None
        self.audio_feat_length = list(data.audio_feat_length)
        self.whisper_path = settings.whisper_path if self.load_audio_embeds else None
        if self.whisper_path and not Path(self.whisper_path).is_file():
            raise FileNotFoundError(
                f"whisper checkpoint not found: {self.whisper_path} (set ckpt.whisper_path; "
                "tools/make_tiny_checkpoints.py writes a tiny one for tests)"
            )
        self._mask = None
        self._audio_encoder = None
        self._mel_cache = None

    # -- components built on first use (inside the worker process) ---------------------------------------

    @property
    def mask(self) -> torch.Tensor:
        """(3, R, R) fixed mask: data.mask_image_path, or configs/faces.yaml's `fixed_mask` geometry."""
        if self._mask is None:
            self._mask = load_fixed_mask(self.resolution, self.mask_image_path or None,
                                         fixed_mask=load_faces_config().fixed_mask)
        return self._mask

    @property
    def audio_encoder(self):
        if self._audio_encoder is None:
            from latentsync.whisper.audio2feature import Audio2Feature

            self._audio_encoder = Audio2Feature(
                model_path=self.whisper_path,
                device="cpu",
                audio_embeds_cache_dir=self.audio_embeds_cache_dir,
                num_frames=self.num_frames,
                audio_feat_length=self.audio_feat_length,
            )
        return self._audio_encoder

    def read_mel(self, path: str) -> torch.Tensor:
        if self._mel_cache is None and self.mel_cache_dir:
            self._mel_cache = MelCache(self.mel_cache_dir, self.audio)
        return read_mel_cached(path, self._mel_cache, lambda p: compute_mel(p, self.audio_sample_rate, self.audio))

    # -- one sample ------------------------------------------------------------------------------------------

    def _choose_windows(self, reader: ClipReader, mel, rng: np.random.Generator) -> tuple[int, int]:
        count = len(reader)
        if mel is not None:
            starts = valid_starts(count, mel.shape[-1], self.num_frames, self.video_fps, self.mel_window_length,
                                  self.audio)
        else:
            starts = np.arange(count - self.num_frames + 1)
        starts = np.array([s for s in starts if len(reference_starts(count, self.num_frames, s))], dtype=np.int64)
        if len(starts) == 0:
            raise ClipUnusable(f"no ground-truth window with a non-overlapping reference and audio ({count} frames)")
        start = int(rng.choice(starts))
        return start, int(rng.choice(reference_starts(count, self.num_frames, start)))

    def load_sample(self, path: str, rng: np.random.Generator) -> dict:
        reader = ClipReader(path, self.video_fps)
        if len(reader) < 3 * self.num_frames:
            raise ClipUnusable(f"only {len(reader)} frames, need at least {3 * self.num_frames}")
        mel = self.read_mel(path) if self.load_mel else None
        start, ref_start = self._choose_windows(reader, mel, rng)
        gt, masked, masks = masked_images(reader.frames(start, self.num_frames), self.mask)
        sample = {
            "gt_pixel_values": gt.float(),
            "masked_pixel_values": masked.float(),
            "masks": masks.float(),
            "ref_pixel_values": pixel_values(reader.frames(ref_start, self.num_frames), self.resolution).float(),
            "video_path": path,
            "start_idx": start,
            "ref_start_idx": ref_start,
        }
        if mel is not None:
            sample["mel"] = crop_mel_window(mel, start, self.num_frames, self.video_fps, self.audio).float()
        if self.load_audio_embeds:
            try:
                features = self.audio_encoder.audio2feat(path)
            except (OSError, ValueError) as exc:
                raise ClipUnusable(f"whisper features failed ({exc})") from None
            sample["audio_embeds"] = self.audio_encoder.crop_overlap_audio_window(features, start).float()
        return sample
