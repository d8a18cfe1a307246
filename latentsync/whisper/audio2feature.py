"""Whisper layer embeddings per video frame: the audio conditioning of the LatentSync UNet.

`Audio2Feature` keeps the official public interface (`audio2feat`, `feature2chunks`, `get_sliced_feature`,
`crop_overlap_audio_window`) and reproduces its numbers: whisper's log-mel with one global max over the whole
file, 30 s windows of 3000 log-mel frames (the last one zero-padded), the encoder's input embedding and each
block's output without `ln_post`, 50 features per second, and the clamped per-frame index windows.
Differences from the official code are additions: batched windows, a content-keyed atomic cache
(`latentsync.utils.content_cache`), input checks, and an opt-in fix for the 30 s window boundary
(`fix_window_boundaries`, see docs/audio.md).

Feature timing (the functions before the class): which 30 s encoder windows to run, and which features each
video frame sees. Official scheme (the default): windows start every 3000 log-mel frames (30 s); the last one
is zero-padded; feature t (50 per second) is window t // 1500 at position t % 1500. There are n_mel_frames // 2
features.

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

`load_waveform` turns what callers pass (a media path or a waveform array) into 16 kHz mono float32.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from whisper.audio import HOP_LENGTH, N_FRAMES, SAMPLE_RATE, log_mel_spectrogram, pad_or_trim

from latentsync.config import load_config
from latentsync.utils.audio import AudioInputError
from latentsync.utils.content_cache import TensorCache, array_digest, content_key, file_digest
from latentsync.utils.media import MediaError, read_audio
from latentsync.whisper.encoder import encoder_layer_outputs, load_whisper_encoder

logger = logging.getLogger(__name__)

FEATURES_CONFIG = "configs/whisper/features.yaml"
MAX_CHANNELS = 16  # a 2-D array with an axis this small is (samples, channels) or (channels, samples)
MEL_FRAMES_PER_FEATURE = 2  # conv2 has stride 2
FEATURES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH // MEL_FRAMES_PER_FEATURE  # 50


# ------------------------------------------------------------------------------------- feature timing


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


# ------------------------------------------------------------------------------------- Audio2Feature


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
        self.cache = (TensorCache(audio_embeds_cache_dir, "features", what="whisper feature cache")
                      if audio_embeds_cache_dir else None)

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
        features = self.cache.load(key, (None, self.dims.n_audio_layer + 1, self.embedding_dim))
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
        return content_key(audio=audio_digest, model=self.model_digest, options=options)

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
