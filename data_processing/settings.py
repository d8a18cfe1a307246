"""Settings of a pipeline run: configs/data_processing.yaml plus `section.key=value` overrides, checked once.

`load_settings` returns a `DataProcessingSettings`: one frozen record per YAML section (latentsync/settings.py,
the pattern of the training settings), every key required and typed, the defaults only in the YAML. A bad
value stops the run before any item with a `SettingsError` naming the file, the key and the value. Records
pickle, so worker processes get the same record.
"""

from __future__ import annotations

from collections.abc import Iterable

from latentsync.config import load_config
from latentsync.settings import Section, SettingsError

DEFAULT_CONFIG = "configs/data_processing.yaml"


class Folders(Section):
    """`folders:` output folder names, created next to input_dir (or under --output_root)."""

    resampled: str
    shot: str
    segmented: str
    affine_transformed: str
    av_synced: str  # {threshold} = sync.min_confidence
    high_visual_quality: str
    manifests: str


class BrokenCheck(Section):
    """`broken:` step 1, what counts as a broken video and whether it is deleted."""

    delete: bool
    min_frames: int
    min_audio_seconds: float


class Resampling(Section):
    """`resample:` step 2, the frame rate and audio format every later step relies on."""

    fps: float
    sample_rate: int


class ShotDetection(Section):
    """`shot:` step 3, PySceneDetect's AdaptiveDetector."""

    adaptive_threshold: float
    min_scene_len: int
    window_width: int
    min_content_val: float


class Segmenting(Section):
    """`segment:` step 4, the clip length range in seconds."""

    min_seconds: float
    max_seconds: float


class Alignment(Section):
    """`affine:` step 5, face alignment and the face-stability limits."""

    resolution: int
    faces_config: str
    max_missing_face_fraction: float
    max_face_jitter: float
    max_face_scale_change: float


class SyncFiltering(Section):
    """`sync:` step 6, the SyncNet thresholds, crop and tracking detector."""

    min_confidence: float
    max_abs_offset: int
    crop: str
    detector: str


class QualityFiltering(Section):
    """`quality:` step 7, the HyperIQA threshold and the optional source-face size limit."""

    min_score: float
    min_face_size: float | None


class AuxModel(Section):
    """`models.<name>:` a checkpoint, or a "package.module:function" factory (empty: load the checkpoint)."""

    checkpoint: str
    factory: str


class AuxModels(Section):
    """`models:` the device and the auxiliary models."""

    device: str
    syncnet: AuxModel
    face_detector: AuxModel
    hyperiqa: AuxModel


class Encoding(Section):
    """`encoding:` how clips are written (H.264 yuv420p + AAC)."""

    crf: int
    preset: str
    audio_bitrate: str


class Runtime(Section):
    """`runtime:` workers, chunking and dry-run listing."""

    num_workers: int
    chunk_size: int
    max_listed: int


class DataProcessingSettings(Section):
    """The whole of configs/data_processing.yaml: what every step, the runner and the model factories read."""

    folders: Folders
    video_extensions: tuple[str, ...]
    broken: BrokenCheck
    resample: Resampling
    shot: ShotDetection
    segment: Segmenting
    affine: Alignment
    sync: SyncFiltering
    quality: QualityFiltering
    models: AuxModels
    encoding: Encoding
    runtime: Runtime

    def check(self, source: str) -> None:
        """Refuse settings that would silently produce wrong data."""
        seg = self.segment
        if not 0 < seg.min_seconds <= seg.max_seconds:
            raise SettingsError(f"{source}: segment.min_seconds ({seg.min_seconds}) must be > 0 and <= "
                                f"segment.max_seconds ({seg.max_seconds})")
        if seg.max_seconds < 2 * seg.min_seconds and seg.max_seconds != seg.min_seconds:
            # Equal splitting of a shot of length L into ceil(L / max) parts stays >= min only when max >= 2 * min.
            raise SettingsError(
                f"{source}: segment.max_seconds ({seg.max_seconds}) must be at least twice segment.min_seconds "
                f"({seg.min_seconds}) so every long shot can be split into parts within [min, max]"
            )
        if self.resample.fps <= 0 or self.resample.sample_rate <= 0:
            raise SettingsError(f"{source}: resample.fps and resample.sample_rate must be positive")
        if self.affine.resolution not in (256, 512):
            raise SettingsError(f"{source}: affine.resolution must be 256 or 512 (the LatentSync face sizes), "
                                f"got {self.affine.resolution}")
        if self.sync.crop not in ("track", "full_frame"):
            raise SettingsError(f"{source}: sync.crop must be 'track' or 'full_frame', got {self.sync.crop!r}")


def load_settings(path: str = DEFAULT_CONFIG, overrides: Iterable[str] = ()) -> DataProcessingSettings:
    """The pipeline config with `section.key=value` overrides applied, as checked settings."""
    return DataProcessingSettings.from_config(load_config(path, overrides), source=str(path))


def threshold_label(value: float) -> str:
    """How a threshold appears in a folder name: 3.0 -> '3', 2.5 -> '2.5' (official: av_synced_3)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"
