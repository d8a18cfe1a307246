"""Settings of a pipeline run: configs/data_processing.yaml plus command-line overrides.

The config is an OmegaConf DictConfig; it is converted to a plain dict before crossing into worker
processes so it pickles cheaply and identically everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from latentsync.config import load_config

DEFAULT_CONFIG = "configs/data_processing.yaml"


def load_settings(path: str = DEFAULT_CONFIG, overrides: Iterable[str] = ()) -> DictConfig:
    """The pipeline config with `section.key=value` overrides applied, checked for obvious mistakes."""
    cfg = load_config(path, overrides)
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    """Refuse settings that would silently produce wrong data."""
    seg = cfg.segment
    if not 0 < seg.min_seconds <= seg.max_seconds:
        raise ValueError(f"segment.min_seconds ({seg.min_seconds}) must be > 0 and <= segment.max_seconds ({seg.max_seconds})")
    if seg.max_seconds < 2 * seg.min_seconds and seg.max_seconds != seg.min_seconds:
        # Equal splitting of a shot of length L into ceil(L / max) parts stays >= min only when max >= 2 * min.
        raise ValueError(
            f"segment.max_seconds ({seg.max_seconds}) must be at least twice segment.min_seconds ({seg.min_seconds}) "
            "so every long shot can be split into parts within [min, max]"
        )
    if cfg.resample.fps <= 0 or cfg.resample.sample_rate <= 0:
        raise ValueError("resample.fps and resample.sample_rate must be positive")
    if cfg.affine.resolution not in (256, 512):
        raise ValueError(f"affine.resolution must be 256 or 512 (the LatentSync face sizes), got {cfg.affine.resolution}")
    if cfg.sync.crop not in ("track", "full_frame"):
        raise ValueError(f"sync.crop must be 'track' or 'full_frame', got {cfg.sync.crop!r}")


def threshold_label(value: float) -> str:
    """How a threshold appears in a folder name: 3.0 -> '3', 2.5 -> '2.5' (official: av_synced_3)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"


def as_plain(cfg: DictConfig) -> dict:
    """A resolved plain-dict copy (picklable, no OmegaConf objects) for worker processes."""
    return OmegaConf.to_container(cfg, resolve=True)


def as_config(plain: dict) -> DictConfig:
    return OmegaConf.create(plain)
