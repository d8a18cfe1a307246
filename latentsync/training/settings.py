"""Typed training settings: a trainer's YAML (merged over configs/training/defaults.yaml) checked once, frozen.

`load_training_config` merges a run config over configs/training/defaults.yaml and the command-line overrides.
The trainers and the training datasets read these records instead of the raw DictConfig, so every value has
its type from one place, a missing or mistyped key stops the run before any model loads (with the key and the
value in the message), and the defaults live only in the YAML files under latentsync/configs/. The `model:`
section stays a plain dict: the model constructors check it themselves. The record base (`Section`) and
`SettingsError` are latentsync/settings.py's, shared with the data-processing settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import get_type_hints

from omegaconf import DictConfig, OmegaConf

from latentsync.config import CONFIG_DIR, load_config
from latentsync.settings import Section, SettingsError, at_least

TRAINING_DEFAULTS = CONFIG_DIR / "training" / "defaults.yaml"

# Official whisper choice by the U-Net's cross-attention width (the official scripts/train_unet.py).
WHISPER_BY_CROSS_ATTENTION_DIM = {384: "checkpoints/whisper/tiny.pt", 768: "checkpoints/whisper/small.pt"}


def load_training_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> DictConfig:
    """configs/training/defaults.yaml <- the run config <- `key=value` overrides (later wins)."""
    run_config = load_config(path, overrides)
    merged = OmegaConf.merge(OmegaConf.load(TRAINING_DEFAULTS), run_config)
    merged.config_path = str(path)
    return merged


# ---------------------------------------------------------------------------------------------- sections


class ClipData(Section):
    """The `data:` keys both trainers and their datasets read."""

    train_data_dir: str
    train_fileslist: str
    train_output_dir: str
    audio_mel_cache_dir: str
    batch_size: int = at_least(1)
    num_workers: int = at_least(0)
    num_frames: int = at_least(1)
    resolution: int = at_least(1)
    video_fps: float = at_least(1)
    audio_sample_rate: int = at_least(1)
    max_sample_attempts: int = at_least(1)


class UNetData(ClipData):
    """`data:` of a U-Net config: the audio features, the validation clip, the mouth mask."""

    syncnet_config_path: str
    audio_embeds_cache_dir: str
    audio_feat_length: tuple[int, ...]
    mask_image_path: str
    val_video_path: str
    val_audio_path: str


class SyncNetData(ClipData):
    """`data:` of a SyncNet config: the validation split and what the SyncNet sees (pixels or VAE latents)."""

    val_data_dir: str
    val_fileslist: str
    num_val_samples: int = at_least(1)
    gradient_accumulation_steps: int = at_least(1)
    latent_space: bool
    lower_half: bool


class Checkpoints(Section):
    """`ckpt:` keys both trainers read: where to resume from, the VAE, how often to save."""

    resume_ckpt_path: str
    save_ckpt_steps: int = at_least(1)
    save_training_state: bool
    vae_path: str


class UNetCheckpoints(Checkpoints):
    """`ckpt:` of a U-Net run: the frozen models' weights (empty paths: the official defaults)."""

    whisper_path: str
    syncnet_ckpt_path: str
    lpips_require_pretrained: bool
    trepa_config_path: str


class SyncNetCheckpoints(Checkpoints):
    """`ckpt:` of a SyncNet run; `inference_ckpt_path` is what the U-Net trainer loads as its frozen SyncNet."""

    inference_ckpt_path: str


class Run(Section):
    """`run:` keys both trainers read."""

    seed: int
    mixed_precision_training: bool
    validation_steps: int = at_least(1)
    vae_scaling_factor: float


class UNetRun(Run):
    """`run:` of a U-Net run: loss weights, noise, trainable modules, validation sampling, step limits."""

    max_train_steps: int = at_least(1, unset=-1)
    max_train_epochs: int = at_least(1, unset=-1)
    log_every_steps: int = at_least(1)
    trainable_modules: tuple[str, ...]
    pixel_space_supervise: bool
    recon_loss_weight: float
    sync_loss_weight: float
    perceptual_loss_weight: float
    trepa_loss_weight: float
    use_syncnet: bool
    use_mixed_noise: bool
    mixed_noise_alpha: float
    vae_shift_factor: float
    enable_gradient_checkpointing: bool
    find_unused_parameters: bool
    inference_steps: int = at_least(1)
    guidance_scale: float


class SyncNetRun(Run):
    """`run:` of a SyncNet run: step limit and validation."""

    max_train_steps: int = at_least(1)
    validation_max_frames: int = at_least(1)
    syncnet_val_threshold: float


class Optimizer(Section):
    """`optimizer:` keys both trainers read (AdamW)."""

    lr: float
    max_grad_norm: float


class UNetOptimizer(Optimizer):
    """`optimizer:` of a U-Net run: LR scaling and the diffusers LR schedule."""

    scale_lr: bool
    lr_scheduler: str
    lr_warmup_steps: int = at_least(0)


# ---------------------------------------------------------------------------------------------- whole runs


class _TrainingSettings:
    """Built from a training DictConfig: each `Section` field from the YAML section of the same name."""

    @classmethod
    def from_config(cls, cfg: DictConfig):
        source = str(cfg.get("config_path", "training config"))
        hints = get_type_hints(cls)
        sections = {f.name: hints[f.name].build(cfg, f.name, source) for f in fields(cls)
                    if isinstance(hints[f.name], type) and issubclass(hints[f.name], Section)}
        if not isinstance(cfg.get("model"), DictConfig):
            raise SettingsError(f"{source}: no 'model:' section")
        settings = cls(source=source, model=OmegaConf.to_container(cfg.model, resolve=True), **sections)
        settings.check()
        return settings

    @classmethod
    def load(cls, path: str | os.PathLike, overrides: Sequence[str] = ()):
        """The run config at `path` over the training defaults, with `key=value` overrides, as settings."""
        return cls.from_config(load_training_config(path, overrides))

    def check(self) -> None:
        """Rules between keys (none by default); the per-key types and ranges are checked while building."""


@dataclass(frozen=True)
class UNetTrainingSettings(_TrainingSettings):
    """Everything latentsync/training/unet_trainer.py and UNetDataset read."""

    source: str
    data: UNetData
    ckpt: UNetCheckpoints
    run: UNetRun
    optimizer: UNetOptimizer
    model: dict

    def check(self) -> None:
        if self.run.max_train_steps == -1 and self.run.max_train_epochs == -1:
            raise SettingsError(f"{self.source}: set run.max_train_steps or run.max_train_epochs (both are -1)")
        needed = ("add_audio_layer", "use_motion_module", "cross_attention_dim")
        missing = [key for key in needed if key not in self.model]
        if missing:
            raise SettingsError(f"{self.source}: model section lacks {missing}")

    @property
    def audio_layers(self) -> bool:
        """The U-Net is conditioned on Whisper embeddings (model.add_audio_layer)."""
        return bool(self.model["add_audio_layer"])

    @property
    def sync_loss(self) -> bool:
        """The frozen SyncNet scores the generated mouths (needs audio layers and run.use_syncnet)."""
        return self.audio_layers and self.run.use_syncnet

    @property
    def whisper_path(self) -> str:
        """ckpt.whisper_path if set, else the official checkpoint for model.cross_attention_dim."""
        if self.ckpt.whisper_path:
            return self.ckpt.whisper_path
        dim = self.model["cross_attention_dim"]
        if dim not in WHISPER_BY_CROSS_ATTENTION_DIM:
            raise SettingsError(
                f"no default whisper checkpoint for cross_attention_dim {dim} (official: 384 -> tiny, 768 -> small); "
                "set ckpt.whisper_path=PATH"
            )
        return WHISPER_BY_CROSS_ATTENTION_DIM[dim]


@dataclass(frozen=True)
class SyncNetTrainingSettings(_TrainingSettings):
    """Everything latentsync/training/syncnet_trainer.py and SyncNetDataset read."""

    source: str
    data: SyncNetData
    ckpt: SyncNetCheckpoints
    run: SyncNetRun
    optimizer: Optimizer
    model: dict
