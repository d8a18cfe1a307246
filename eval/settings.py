"""Evaluation settings: configs/eval.yaml turned into small typed records.

Library functions take these records (or plain arguments) so the protocol numbers live in one YAML file
and tests can change them without touching code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from latentsync.config import load_config

DEFAULT_EVAL_CONFIG = "configs/eval.yaml"


def load_eval_config(path: str | Path = DEFAULT_EVAL_CONFIG, overrides: Iterable[str] = ()) -> DictConfig:
    """configs/eval.yaml (or another file) with `section.key=value` overrides applied."""
    return load_config(path, overrides)


def _section(cfg: DictConfig | None, name: str) -> dict:
    cfg = load_eval_config() if cfg is None else cfg
    return OmegaConf.to_container(cfg[name], resolve=True)


class _FromSection:
    """Build a dataclass from one YAML section, ignoring keys it does not declare."""

    section: str = ""

    @classmethod
    def from_config(cls, cfg: DictConfig | None = None, **changes):
        values = _section(cfg, cls.section)
        names = {f.name for f in fields(cls)}
        missing = names - values.keys() - changes.keys()
        if missing:
            raise KeyError(f"configs/eval.yaml section '{cls.section}' lacks {sorted(missing)}")
        values = {k: v for k, v in values.items() if k in names}
        values.update(changes)
        return cls(**values)


@dataclass(frozen=True)
class SyncNetProtocol(_FromSection):
    """How video and audio are cut into SyncNet windows and compared (syncnet_python evaluate())."""

    section = "syncnet"
    fc_dim: int
    fps: int
    sample_rate: int
    frames_per_window: int
    mfcc_per_frame: int
    mfcc_window: int
    crop_size: int
    vshift: int
    batch_size: int

    @property
    def samples_per_frame(self) -> int:
        """Audio samples per video frame (640 at 16 kHz / 25 fps)."""
        return self.sample_rate // self.fps


@dataclass(frozen=True)
class TrackingSettings(_FromSection):
    """Face detection, tracking and cropping in front of the SyncNet (syncnet_python run_pipeline)."""

    section = "tracking"
    detector: str
    s3fd_conf_threshold: float
    s3fd_scales: list
    s3fd_merge_nms: float
    fallback_conf_threshold: float
    scene_detection: bool
    iou_threshold: float
    max_gap_frames: int
    min_track: int
    min_face_size: float
    smooth_kernel: int
    crop_scale: float
    pad_value: int


@dataclass(frozen=True)
class FVDSettings(_FromSection):
    """Which frames become the FVD clip and how faces are cropped."""

    section = "fvd"
    start_frame: int
    num_frames: int
    resolution: list
    face_confidence: float
    feature_dim: int


@dataclass(frozen=True)
class HyperIQASettings(_FromSection):
    """HyperIQA input preparation (the data pipeline's threshold is `quality.min_score` in data_processing.yaml)."""

    section = "hyperiqa"
    crop_size: int
    mean: list
    std: list


def checkpoint_path(name: str, cfg: DictConfig | None = None) -> str:
    """Default checkpoint location of an auxiliary model (syncnet, s3fd, hyperiqa, i3d)."""
    return _section(cfg, "checkpoints")[name]
