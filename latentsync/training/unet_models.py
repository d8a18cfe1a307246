"""What U-Net training loads besides the U-Net: the VAE, the frozen SyncNet, LPIPS and TREPA, and which U-Net
parameters train."""

from __future__ import annotations

import logging
from pathlib import Path

from latentsync.config import load_config
from latentsync.training.settings import SyncNetTrainingSettings, UNetTrainingSettings

logger = logging.getLogger("train_unet")


def load_vae(settings: UNetTrainingSettings, device, dtype):
    from diffusers import AutoencoderKL

    path = Path(settings.ckpt.vae_path)
    if not path.exists():
        raise FileNotFoundError(f"VAE not found: {path} (set ckpt.vae_path; the official one is "
                                "checkpoints/sd-vae-ft-mse, tools/make_tiny_checkpoints.py writes a tiny one)")
    vae = AutoencoderKL.from_pretrained(str(path), torch_dtype=dtype).requires_grad_(False).to(device)
    if settings.run.pixel_space_supervise:
        vae.enable_gradient_checkpointing()  # the decode of the predicted latents is differentiated
    return vae


def load_frozen_syncnet(settings: UNetTrainingSettings, device, dtype):
    """The SyncNet that scores generated mouths and its settings, or (None, None) when the sync loss is off."""
    if not settings.sync_loss:
        return None, None
    from latentsync.models.stable_syncnet import StableSyncNet

    syncnet_settings = SyncNetTrainingSettings.load(settings.data.syncnet_config_path)
    path = settings.ckpt.syncnet_ckpt_path or syncnet_settings.ckpt.inference_ckpt_path
    if not path:
        raise ValueError(f"SyncNet checkpoint is not set: give ckpt.syncnet_ckpt_path=PATH or ckpt.inference_ckpt_path "
                         f"in {settings.data.syncnet_config_path} (or run.use_syncnet=false)")
    syncnet = StableSyncNet.from_pretrained(syncnet_settings.model, path, gradient_checkpointing=True)
    return syncnet.requires_grad_(False).to(device=device, dtype=dtype).eval(), syncnet_settings


def load_perceptual_losses(settings: UNetTrainingSettings, device):
    """(lpips, trepa) modules, each None when its weight is 0 or pixel-space supervision is off."""
    lpips = trepa = None
    if not settings.run.pixel_space_supervise:
        return None, None
    if settings.run.perceptual_loss_weight != 0:
        from latentsync.models.lpips import LPIPS

        lpips = LPIPS(require_pretrained=settings.ckpt.lpips_require_pretrained).to(device)
    if settings.run.trepa_loss_weight != 0:
        from latentsync.trepa.loss import TREPALoss
        from latentsync.trepa.videomae import VideoMAEConfig, load_videomae

        trepa_path = settings.ckpt.trepa_config_path
        trepa_cfg = load_config(trepa_path)
        model = None
        if not trepa_cfg.loss.checkpoint:  # a checkpoint-free (tiny) config: random extractor, for demos/tests
            logger.warning("TREPA config %s names no checkpoint: random VideoMAE, TREPA is not meaningful",
                           trepa_path)
            model = load_videomae(None, VideoMAEConfig.from_dict(trepa_cfg.model), with_cp=True)
        trepa = TREPALoss(device=device, with_cp=True, model=model, config_path=trepa_path)
    return lpips, trepa


def select_trainable(unet, settings: UNetTrainingSettings) -> list[str]:
    """Official rule: with motion modules only names containing a `run.trainable_modules` entry train."""
    patterns = settings.run.trainable_modules
    if settings.model["use_motion_module"]:
        unet.requires_grad_(False)
        for name, param in unet.named_parameters():
            if any(p in name for p in patterns):
                param.requires_grad_(True)
    else:
        unet.requires_grad_(True)
    names = [n for n, p in unet.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError(f"no U-Net parameter matches run.trainable_modules={list(patterns)}")
    return names
