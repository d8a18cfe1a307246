"""The auxiliary models the steps need, built once per worker from checkpoints/ (or a configured factory).

Missing checkpoints are reported before any video is processed, with what to download and where to put
it. Each model section in the config may name `factory: "package.module:function"`; the function gets the
pipeline's settings (the `DataProcessingSettings` record of data_processing/settings.py) and returns the
model object (the tests use this for tiny or controlled stand-ins).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from data_processing.settings import DataProcessingSettings
from latentsync.config import REPO_ROOT
from latentsync.errors import InputError


class ModelUnavailableError(InputError, RuntimeError):
    """A model a step needs cannot be built; the message says which file is missing and what to do."""


# model name -> (what it is, official file name, steps that use it)
MODEL_INFO = {
    "syncnet": ("evaluation SyncNet (syncnet_python)", "auxiliary/syncnet_v2.model", "sync"),
    "face_detector": ("S3FD face detector", "auxiliary/sfd_face.pth", "sync"),
    "hyperiqa": ("HyperIQA (KonIQ-10k)", "auxiliary/koniq_pretrained.pkl", "quality"),
}


def resolve_path(path: str | Path) -> Path:
    """Checkpoint paths in the config are relative to the repository root (or absolute)."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


def factory_for(cfg: DataProcessingSettings, name: str):
    """The configured factory callable of a model, or None to load the checkpoint."""
    spec = getattr(cfg.models, name).factory
    if not spec:
        return None
    module, _, attribute = spec.partition(":")
    if not attribute:
        raise ModelUnavailableError(f"models.{name}.factory must look like 'package.module:function', got {spec!r}")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ModelUnavailableError(f"models.{name}.factory {spec!r} cannot be imported: {exc}") from exc


def checkpoint_for(cfg: DataProcessingSettings, name: str) -> Path:
    """The checkpoint of a model, or a ModelUnavailableError saying how to get it."""
    path = resolve_path(getattr(cfg.models, name).checkpoint)
    if not path.is_file():
        what, official, step = MODEL_INFO[name]
        raise ModelUnavailableError(
            f"{what} checkpoint not found: {path}. Step '{step}' needs it. Download '{official}' from the "
            f"ByteDance/LatentSync-1.5 Hugging Face repository into checkpoints/ (see checkpoints/README.md), "
            f"point models.{name}.checkpoint at your copy, or leave the step out with --steps."
        )
    return path


def check_available(cfg: DataProcessingSettings, name: str) -> None:
    """Fail early (before any item) when a model can be neither built by a factory nor loaded."""
    if factory_for(cfg, name) is None:
        checkpoint_for(cfg, name)


def device_for(cfg: DataProcessingSettings, worker_index: int) -> str:
    """models.device; `auto` spreads workers over the visible GPUs (worker k -> GPU k mod N), else CPU."""
    device = cfg.models.device
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return f"cuda:{worker_index % torch.cuda.device_count()}"
    return "cpu"


def build(cfg: DataProcessingSettings, name: str, loader, device: str):
    """`factory(cfg)` when a factory is configured (it gets the whole settings record), else
    `loader(checkpoint, device)`."""
    factory = factory_for(cfg, name)
    if factory is not None:
        return factory(cfg)
    return loader(checkpoint_for(cfg, name), device)
