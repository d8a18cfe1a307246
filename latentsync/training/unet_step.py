"""One U-Net training step's losses: noise-prediction MSE, and in stage 2 the pixel-space losses (LPIPS on the
lower half of the face, TREPA) and the frozen SyncNet's sync loss on the one-step clean estimate."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from latentsync.data.syncnet_dataset import syncnet_visual_input
from latentsync.models.sync_loss import sync_loss
from latentsync.pipelines.conditioning import decode_latents, encode_latents, mask_to_latent
from latentsync.training.settings import SyncNetTrainingSettings, UNetTrainingSettings
from latentsync.utils.diffusion_steps import one_step_sampling, training_noise

LOSS_NAMES = ("recon", "sync", "lpips", "trepa")


class UNetTrainer:
    """Holds the frozen parts and computes the weighted loss of one batch."""

    def __init__(self, settings: UNetTrainingSettings, accelerator, vae, scheduler, syncnet,
                 syncnet_settings: SyncNetTrainingSettings | None, lpips, trepa, vae_frames_per_call: int = 0):
        self.run, self.accelerator = settings.run, accelerator
        self.audio_layers = settings.audio_layers
        self.vae, self.scheduler = vae, scheduler
        self.syncnet, self.syncnet_data = syncnet, syncnet_settings.data if syncnet_settings else None
        self.lpips, self.trepa = lpips, trepa
        self.scaling, self.shift = self.run.vae_scaling_factor, self.run.vae_shift_factor
        self.weights = {"recon": self.run.recon_loss_weight, "sync": self.run.sync_loss_weight,
                        "lpips": self.run.perceptual_loss_weight, "trepa": self.run.trepa_loss_weight}
        self.partially_frozen = False
        self.frames_per_call = vae_frames_per_call  # frames per VAE call (0 = all at once): bounds its activations

    def latents(self, batch: dict, generator) -> tuple[torch.Tensor, ...]:
        def encode(key: str) -> torch.Tensor:
            return encode_latents(self.vae, batch[key], generator, self.scaling, self.shift,
                                  frames_per_call=self.frames_per_call).float()

        gt, masked, ref = encode("gt_pixel_values"), encode("masked_pixel_values"), encode("ref_pixel_values")
        return gt, masked, ref, mask_to_latent(batch["masks"], gt.shape[-2:])

    def losses(self, unet, batch: dict, generator) -> dict[str, torch.Tensor]:
        run = self.run
        device = self.accelerator.device
        gt, masked, ref, masks = self.latents(batch, generator)
        noise = training_noise(gt.shape, generator, device, run.use_mixed_noise, run.mixed_noise_alpha)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (gt.shape[0],),
                                  generator=generator).to(device)
        noisy = self.scheduler.add_noise(gt, noise, timesteps)
        audio = batch.get("audio_embeds") if self.audio_layers else None
        unet_input = torch.cat([noisy, masks, masked, ref], dim=1)
        if self.partially_frozen:
            # torch 2.13 CPU segfaults in GroupNorm backward when a channels-last-3d input needs no grad but the
            # norm's weights do (frozen layers before trainable ones); an input that requires grad avoids it.
            unet_input.requires_grad_(True)
        with self.accelerator.autocast():
            pred_noise = unet(unet_input, timesteps, encoder_hidden_states=audio).sample
        zero = torch.zeros((), device=device)
        out = {name: zero for name in LOSS_NAMES}
        if self.weights["recon"] != 0:
            out["recon"] = F.mse_loss(pred_noise.float(), noise.float())
        needs_pixels = run.pixel_space_supervise and any(
            m is not None for m in (self.lpips, self.trepa, self.syncnet))
        needs_latents = self.syncnet is not None and not run.pixel_space_supervise
        if needs_pixels or needs_latents:
            pred_latents = one_step_sampling(self.scheduler, pred_noise.float(), timesteps, noisy)
        if needs_pixels:
            pixels = decode_latents(self.vae, pred_latents, self.scaling, self.shift,
                                    frames_per_call=self.frames_per_call).float()
            gt_pixels = rearrange(batch["gt_pixel_values"], "b f c h w -> (b f) c h w").float()
            if self.lpips is not None:
                half = pixels.shape[2] // 2
                out["lpips"] = self.lpips(pixels[:, :, half:], gt_pixels[:, :, half:]).mean()
            if self.trepa is not None:
                video = "(b f) c h w -> b c f h w"
                out["trepa"] = self.trepa(rearrange(pixels, video, f=gt.shape[2]),
                                          rearrange(gt_pixels, video, f=gt.shape[2]))
        if self.syncnet is not None:
            out["sync"] = self.sync_loss(pixels if run.pixel_space_supervise else pred_latents, batch["mel"],
                                         gt.shape[2])
        out["total"] = sum(self.weights[name] * out[name] for name in LOSS_NAMES)
        return out

    def sync_loss(self, generated: torch.Tensor, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Frozen-SyncNet BCE towards "in sync" for decoded pixels ((b f) c h w) or latents (b c f h w)."""
        if generated.ndim == 4:
            size = self.syncnet_data.resolution
            if generated.shape[-1] != size:
                generated = F.interpolate(generated, size=(size, size), mode="bicubic")
            frames = rearrange(generated, "(b f) c h w -> b f c h w", f=num_frames)
        else:
            frames = rearrange(generated, "b c f h w -> b f c h w")
        dtype = next(self.syncnet.parameters()).dtype
        visual = syncnet_visual_input(frames, self.syncnet_data.lower_half).to(dtype)
        vision, audio = self.syncnet(visual, mel.to(dtype))
        return sync_loss(vision, audio)
