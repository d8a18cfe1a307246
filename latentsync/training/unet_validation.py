"""Validation of U-Net training: the inference pipeline lip-syncs the validation clip with the current weights
(the training's own U-Net, VAE and dtype, passed to `build_pipeline`; official sampling: DDIM, no DeepCache)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from latentsync.training.settings import UNetTrainingSettings

logger = logging.getLogger("train_unet")
DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}  # LipsyncOptions.dtype


def run_validation(settings: UNetTrainingSettings, unet, vae, run_dir: Path, step: int, device, dtype) -> Path | None:
    """Lip-sync the validation clip with the current weights; any failure is logged, training goes on."""
    data, run = settings.data, settings.run
    video, audio = Path(data.val_video_path), Path(data.val_audio_path)
    if not video.is_file() or not audio.is_file():
        logger.info("validation skipped: %s or %s not found (set data.val_video_path / val_audio_path)", video, audio)
        return None
    try:
        from latentsync.api import LipsyncOptions, build_pipeline, lipsync
        from latentsync.pipelines.options import SamplingOptions
        from latentsync.whisper.audio2feature import Audio2Feature
    except ImportError as exc:
        logger.info("validation skipped: the inference pipeline is not available (%s)", exc)
        return None
    out = run_dir / "val_videos" / f"val_video_{step}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        vae.config.scaling_factor = run.vae_scaling_factor
        encoder = Audio2Feature(settings.whisper_path, device=device, num_frames=data.num_frames,
                                audio_feat_length=list(data.audio_feat_length))
        options = LipsyncOptions(inference_steps=run.inference_steps, guidance_scale=run.guidance_scale, seed=run.seed,
                                 device=str(device), dtype=DTYPE_NAMES[dtype], enable_deepcache=False, progress=False)
        clip = SamplingOptions(num_frames=data.num_frames, resolution=data.resolution, weight_dtype=dtype,
                               mask_image_path=data.mask_image_path or None)
        loaded = build_pipeline(options, unet=unet, vae=vae, audio_encoder=encoder, clip=clip)
        lipsync(str(video), str(audio), str(out), options, pipeline=loaded)
    except Exception as exc:  # validation must never end a long training run
        logger.warning("validation at step %d failed: %s: %s", step, type(exc).__name__, exc)
        return None
    logger.info("validation video: %s", out)
    return out
