"""Whisper layer embeddings per video frame: the audio conditioning of the LatentSync UNet.

`Audio2Feature` keeps the official public interface (`audio2feat`, `feature2chunks`, `get_sliced_feature`,
`crop_overlap_audio_window`) and reproduces its numbers: whisper's log-mel with one global max over the whole
file, 30 s windows of 3000 log-mel frames (the last one zero-padded), the encoder's input embedding and each
block's output without `ln_post`, 50 features per second, and the clamped per-frame index windows.
Differences from the official code are additions: batched windows, a content-keyed atomic cache, input checks,
and an opt-in fix for the 30 s window boundary (`fix_window_boundaries`, see docs/audio.md).

`load_waveform` turns what callers pass (a media path or a waveform array) into 16 kHz mono float32.
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from whisper.audio import N_FRAMES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim

from latentsync.config import load_config
from latentsync.utils.audio import AudioInputError
from latentsync.utils.media import MediaError, read_audio
from latentsync.whisper.cache import FeatureCache, array_digest, cache_key, file_digest
from latentsync.whisper.encoder import encoder_layer_outputs, load_whisper_encoder
from latentsync.whisper.windows import (
    FEATURES_PER_SECOND,
    WindowPlan,
    boundary_centred_plan,
    frame_feature_indices,
    gather_frames,
    num_chunks,
    official_plan,
)

logger = logging.getLogger(__name__)

FEATURES_CONFIG = "configs/whisper/features.yaml"
MAX_CHANNELS = 16  # a 2-D array with an axis this small is (samples, channels) or (channels, samples)


class Audio2Feature:
    """Whisper encoder features for an audio/video file, and their per-video-frame windows.

    device: defaults to CUDA when available. dtype: defaults to fp16 on CUDA (as the official transcribe
    loop) and fp32 on CPU. fix_window_boundaries: off by default (numerically official); when on, features
    within `boundary_half_width_s` of each 30 s boundary are cross-faded into a window centred on that boundary.
    settings: the `features:` section of a features config (default: the packaged configs/whisper/features.yaml).
    """

    def __init__(
        self,
        model_path: str | os.PathLike = "checkpoints/whisper/tiny.pt",
        device: str | torch.device | None = None,
        audio_embeds_cache_dir: str | os.PathLike | None = None,
        num_frames: int = 16,
        audio_feat_length=(2, 2),
        *,
        dtype: torch.dtype | None = None,
        fix_window_boundaries: bool = False,
        window_batch_size: int | None = None,
        settings=None,
    ):
        settings = load_config(FEATURES_CONFIG).features if settings is None else settings
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        self.model_path = Path(model_path)
        self.encoder, self.dims = load_whisper_encoder(self.model_path, self.device)
        self.embedding_dim = self.dims.n_audio_state
        self.num_frames = num_frames
        self.audio_feat_length = list(audio_feat_length)
        self.fix_window_boundaries = fix_window_boundaries
        self.boundary_half_width = int(round(settings.boundary_half_width_s * FEATURES_PER_SECOND))
        self.window_batch_size = int(window_batch_size or settings.window_batch_size)
        self.min_samples = int(np.ceil(SAMPLE_RATE / settings.reference_fps))
        self.cache_format_version = int(settings.cache_format_version)
        self.audio_embeds_cache_dir = audio_embeds_cache_dir
        self.cache = FeatureCache(audio_embeds_cache_dir) if audio_embeds_cache_dir else None

    # ------------------------------------------------------------------------------------- audio -> features

    def log_mel_spectrogram(self, audio) -> torch.Tensor:
        """Whisper's normalised log-mel (n_mels, n_samples // 160) of the whole input, on the CPU in fp32."""
        samples = load_waveform(audio)
        if len(samples) < self.min_samples:
            source = f"audio file {audio}" if isinstance(audio, (str, os.PathLike)) else "the audio array"
            raise AudioInputError(
                f"{source} is {len(samples) / SAMPLE_RATE:.3f} s long, shorter than one video frame "
                f"({self.min_samples} samples at {SAMPLE_RATE} Hz); give at least {self.min_samples / SAMPLE_RATE:.2f} s"
            )
        return log_mel_spectrogram(torch.from_numpy(samples), n_mels=self.dims.n_mels)

    def audio2feat(self, audio_path) -> torch.Tensor:
        """(T, n_layers + 1, D) features at 50 per second for a file path or a 16 kHz waveform array.

        On CUDA the result is float16 (as the official code gives it), on the CPU float32; it lives on the CPU.
        """
        if self.cache is None:
            return self._compute_features(audio_path)
        key = self._cache_key(audio_path)
        trailing = (self.dims.n_audio_layer + 1, self.embedding_dim)
        features = self.cache.load(key, trailing)
        if features is None:
            features = self._compute_features(audio_path)
            self.cache.store(key, features)
        return features

    def _compute_features(self, audio) -> torch.Tensor:
        mel = self.log_mel_spectrogram(audio)
        plan = self._window_plan(mel.shape[-1])
        layers = self.dims.n_audio_layer + 1
        # Accumulated in fp32: a single read with weight 1 (the official scheme) is copied exactly.
        out = torch.zeros((plan.num_features, layers, self.embedding_dim), dtype=torch.float32)
        used = np.unique(plan.window)
        for begin in range(0, len(used), self.window_batch_size):
            batch = used[begin : begin + self.window_batch_size]
            windows = torch.stack([pad_or_trim(mel[:, s : s + N_FRAMES], N_FRAMES) for s in plan.starts[batch]])
            embeddings = encoder_layer_outputs(self.encoder, windows.to(self.device).to(self.dtype)).cpu()
            reads = np.flatnonzero(np.isin(plan.window, batch))
            local = torch.from_numpy(np.searchsorted(batch, plan.window[reads]))
            picked = embeddings[local, torch.from_numpy(plan.position[reads])].float()
            weight = torch.from_numpy(plan.weight[reads]).float()[:, None, None]
            out.index_add_(0, torch.from_numpy(plan.feature[reads]), picked * weight)
        return out.to(self.dtype)

    def _window_plan(self, num_mel_frames: int) -> WindowPlan:
        if self.fix_window_boundaries:
            return boundary_centred_plan(num_mel_frames, self.boundary_half_width)
        return official_plan(num_mel_frames)

    # ------------------------------------------------------------------------------------- cache identity

    @cached_property
    def model_digest(self) -> str:
        """sha256 of the checkpoint file: the model identity in cache keys."""
        return file_digest(self.model_path)

    def _cache_key(self, audio) -> str:
        if isinstance(audio, (str, os.PathLike)):
            if not Path(audio).is_file():
                load_waveform(audio)  # raises the clear "not found" / "folder" error
            audio_digest = file_digest(audio)
        else:
            audio_digest = array_digest(load_waveform(audio))
        options = {
            "dtype": str(self.dtype),
            "boundary_half_width": self.boundary_half_width if self.fix_window_boundaries else None,
            "format": self.cache_format_version,
        }
        return cache_key(audio_digest, self.model_digest, options)

    # ------------------------------------------------------------------------------------- features -> frames

    def get_sliced_feature(self, feature_array, vid_idx: int, fps: float = 25):
        """(10·(L+1), D) window of video frame `vid_idx`, and the 10 clamped feature indices it used."""
        indices = frame_feature_indices(len(feature_array), [vid_idx], fps, self.audio_feat_length)
        return gather_frames(feature_array, indices)[0], indices[0].tolist()

    def feature2chunks(self, feature_array, fps: float) -> list[torch.Tensor]:
        """One (10·(L+1), D) window per video frame, floor(T/2) + 2 of them at 25 fps (official count)."""
        count = self._check_frames(feature_array, fps)
        indices = frame_feature_indices(len(feature_array), np.arange(count), fps, self.audio_feat_length)
        return list(gather_frames(feature_array, indices).unbind(0))

    def crop_overlap_audio_window(self, audio_feat, start_index: int, fps: float = 25) -> torch.Tensor:
        """(num_frames, 10·(L+1), D): the windows of video frames start_index .. start_index + num_frames - 1."""
        frames = np.arange(start_index, start_index + self.num_frames)
        return gather_frames(audio_feat, frame_feature_indices(len(audio_feat), frames, fps, self.audio_feat_length))

    def _check_frames(self, feature_array, fps: float) -> int:
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        total = len(feature_array)
        if total * fps < FEATURES_PER_SECOND:
            raise AudioInputError(
                f"{total} whisper features ({total / FEATURES_PER_SECOND:.3f} s of audio) do not cover one video "
                f"frame at {fps} fps"
            )
        return num_chunks(total, fps)


# ------------------------------------------------------------------------------------- audio input


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
