"""Evaluation settings: configs/eval.yaml turned into small typed records.

Library functions take these records (or plain arguments) so the protocol numbers live in one YAML file
and tests can change them without touching code. Each record is one section of the file, a
`latentsync.settings.Section` like the training and data-processing settings: every declared key is required
and typed, there are no defaults in code, and a missing or wrong value stops with a `SettingsError` naming
the file, the key and the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from omegaconf import DictConfig

from latentsync.config import load_config
from latentsync.settings import Section, at_least

DEFAULT_EVAL_CONFIG = "configs/eval.yaml"


def load_eval_config(path: str | Path = DEFAULT_EVAL_CONFIG, overrides: Iterable[str] = ()) -> DictConfig:
    """configs/eval.yaml (or another file) with `section.key=value` overrides applied; `config_path` records
    the file for the settings' messages."""
    cfg = load_config(path, overrides)
    cfg.config_path = str(path)
    return cfg


class EvalSection(Section):
    """One section of the eval config, named by `section`."""

    section: ClassVar[str]

    @classmethod
    def from_eval_config(cls, cfg: DictConfig | None = None):
        """The `section:` of `cfg` (default: configs/eval.yaml) as this record."""
        cfg = load_eval_config() if cfg is None else cfg
        return cls.build(cfg, cls.section, str(cfg.get("config_path", "eval config")))


class Checkpoints(EvalSection):
    """`checkpoints:` default locations of the auxiliary models."""

    section = "checkpoints"
    syncnet: str
    s3fd: str
    hyperiqa: str
    i3d: str


class SyncNetProtocol(EvalSection):
    """How video and audio are cut into SyncNet windows and compared (syncnet_python evaluate())."""

    section = "syncnet"
    fc_dim: int = at_least(1)
    fps: int = at_least(1)
    sample_rate: int = at_least(1)
    frames_per_window: int = at_least(1)
    mfcc_per_frame: int = at_least(1)
    mfcc_window: int = at_least(1)
    crop_size: int = at_least(1)
    vshift: int = at_least(0)
    batch_size: int = at_least(1)

    @property
    def samples_per_frame(self) -> int:
        """Audio samples per video frame (640 at 16 kHz / 25 fps)."""
        return self.sample_rate // self.fps


class TrackingSettings(EvalSection):
    """Face detection, tracking and cropping in front of the SyncNet (syncnet_python run_pipeline)."""

    section = "tracking"
    detector: str
    s3fd_conf_threshold: float
    s3fd_scales: tuple[float, ...]
    s3fd_merge_nms: float
    fallback_conf_threshold: float
    scene_detection: bool
    iou_threshold: float
    max_gap_frames: int = at_least(0)
    min_track: int = at_least(0)
    min_face_size: float
    smooth_kernel: int = at_least(1)
    crop_scale: float
    pad_value: int


class SyncFilterRule(EvalSection):
    """`sync_filter:` the data pipeline's rule (eval/syncnet/video_eval.py passes_sync_filter)."""

    section = "sync_filter"
    min_confidence: float
    max_abs_offset: int


class SyncNetAccuracySettings(EvalSection):
    """`syncnet_accuracy:` StableSyncNet accuracy (eval/eval_syncnet_acc.py)."""

    section = "syncnet_accuracy"
    cosine_threshold: float


class FVDSettings(EvalSection):
    """Which frames become the FVD clip and how faces are cropped."""

    section = "fvd"
    start_frame: int = at_least(0)
    num_frames: int = at_least(1)
    resolution: tuple[int, ...]
    face_confidence: float
    feature_dim: int = at_least(1)


class HyperIQASettings(EvalSection):
    """HyperIQA input preparation (the data pipeline's threshold is `quality.min_score` in data_processing.yaml)."""

    section = "hyperiqa"
    crop_size: int = at_least(1)
    mean: tuple[float, ...]
    std: tuple[float, ...]


def checkpoint_path(name: str, cfg: DictConfig | None = None) -> str:
    """Default checkpoint location of an auxiliary model (syncnet, s3fd, hyperiqa, i3d)."""
    return getattr(Checkpoints.from_eval_config(cfg), name)
