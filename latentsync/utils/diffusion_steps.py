"""The diffusion arithmetic shared by training and inference: latents in and out of the VAE, the mask at
latent size, training noise, one-step x0. (The sampling loop itself is `latentsync.pipelines.sampling.denoise`.)

Official semantics (scripts/train_unet.py, latentsync/utils/util.py):
- latents = (posterior sample - shift) * scaling (0.18215 for the SD VAE); decoding inverts it; the
  posterior noise is drawn on the generator's device in the posterior's dtype, exactly as diffusers'
  `latent_dist.sample(generator)` that the official inference pipeline calls;
- the mask goes to latent size by nearest-neighbour interpolation;
- noise is one draw shared by all 16 frames, or with `use_mixed_noise` the "mixed" prior of
  https://arxiv.org/abs/2305.10474: shared * sqrt(a²/(1+a²)) + independent * sqrt(1/(1+a²)), unit variance;
- the clean-latent estimate from predicted noise is x0 = (x_t - sqrt(1 - ᾱ_t) ε) / sqrt(ᾱ_t).
All random draws take an explicit CPU generator so a step is reproducible on any device.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from einops import rearrange

from latentsync.utils.seeding import randn


@functools.cache
def packaged_frames_per_vae_call() -> int:
    """configs/inference.yaml `vae.frames_per_call` (0 = every frame in one call)."""
    from latentsync.config import inference_settings

    return int(inference_settings().vae.frames_per_call)


def _frame_slices(count: int, frames_per_call: int | None):
    step = packaged_frames_per_vae_call() if frames_per_call is None else frames_per_call
    step = count if step <= 0 else step
    return [slice(start, start + step) for start in range(0, count, step)]


def _vae_factors(vae, scaling: float | None, shift: float | None) -> tuple[float, float]:
    cfg = vae.config
    if scaling is None:
        scaling = cfg.scaling_factor
    if shift is None:
        shift = getattr(cfg, "shift_factor", None) or 0.0
    return float(scaling), float(shift)


@torch.no_grad()
def encode_latents(vae, pixels: torch.Tensor, generator: torch.Generator | None, scaling: float | None = None,
                   shift: float | None = None, frames_per_call: int | None = None) -> torch.Tensor:
    """(b, f, 3, H, W) or (f, 3, H, W) pixels in [-1, 1] -> (b or 1, 4, f, H/8, W/8) scaled latents.

    `scaling`/`shift` default to the VAE config's. The posterior is sampled, not its mean, as the official;
    its noise is one draw for all frames, so the result does not depend on `frames_per_call`.
    The VAE sees `frames_per_call` frames at a time (None: configs/inference.yaml `vae.frames_per_call`;
    0: all at once): its activations are a few hundred MB per 256 px frame, and on the CPU 4 frames per call
    run as fast as 16 (docs/benchmarks.md, "VAE memory").
    On the CPU the frames go in channels-last: oneDNN then runs the whole encoder in that layout, about 2x
    faster in bf16 (in NCHW it converts layouts back and forth); fp32 takes the same time either way
    (docs/benchmarks.md, "VAE layout").
    """
    if pixels.ndim == 4:
        pixels = pixels[None]
    scaling, shift = _vae_factors(vae, scaling, shift)
    b, f = pixels.shape[:2]
    device = next(vae.parameters()).device
    flat = rearrange(pixels, "b f c h w -> (b f) c h w").to(device, vae.dtype)
    if device.type == "cpu":
        flat = flat.contiguous(memory_format=torch.channels_last)
    posteriors = [vae.encode(flat[part]).latent_dist for part in _frame_slices(len(flat), frames_per_call)]
    mean = torch.cat([p.mean for p in posteriors])
    std = torch.cat([p.std for p in posteriors])
    draw_device = generator.device if generator is not None else mean.device
    noise = torch.randn(mean.shape, generator=generator, device=draw_device, dtype=mean.dtype).to(mean.device)
    sample = mean + std * noise
    return rearrange((sample - shift) * scaling, "(b f) c h w -> b c f h w", b=b, f=f)


def decode_latents(vae, latents: torch.Tensor, scaling: float | None = None, shift: float | None = None,
                   frames_per_call: int | None = None) -> torch.Tensor:
    """(b, 4, f, h, w) scaled latents -> ((b f), 3, H, W) pixels (differentiable; official frame-major order).

    `frames_per_call` as for `encode_latents`: the decoder's activations are the largest of a run (about
    0.75 GB per 512 px frame in bf16), so it sees a few frames at a time.
    """
    scaling, shift = _vae_factors(vae, scaling, shift)
    flat = (rearrange(latents, "b c f h w -> (b f) c h w") / scaling + shift).to(vae.dtype)
    parts = [vae.decode(flat[part]).sample for part in _frame_slices(len(flat), frames_per_call)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def mask_to_latent(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(b, f, 1, H, W) or (f, 1, H, W) pixel masks -> (b or 1, 1, f, h, w) at latent size (nearest, as official)."""
    if masks.ndim == 4:
        masks = masks[None]
    b, f = masks.shape[:2]
    small = F.interpolate(rearrange(masks.float(), "b f c h w -> (b f) c h w"), size=tuple(size))
    return rearrange(small, "(b f) c h w -> b c f h w", b=b, f=f)


def training_noise(shape, generator: torch.Generator, device, mixed: bool, alpha: float) -> torch.Tensor:
    """Noise for (b, c, f, h, w) latents: shared over frames, or the mixed shared + independent prior."""
    b, c, f, h, w = shape
    if not mixed:
        return randn((b, c, 1, h, w), generator, device).expand(-1, -1, f, -1, -1).contiguous()
    shared_std = (alpha**2 / (1 + alpha**2)) ** 0.5
    independent_std = (1 / (1 + alpha**2)) ** 0.5
    shared = randn((b, c, 1, h, w), generator, device) * shared_std
    return shared.expand(-1, -1, f, -1, -1) + randn(shape, generator, device) * independent_std


def one_step_sampling(scheduler, pred_noise: torch.Tensor, timesteps: torch.Tensor, x_t: torch.Tensor):
    """Predicted clean latents x0 from the predicted noise at per-clip `timesteps` (epsilon prediction only)."""
    if scheduler.config.prediction_type != "epsilon":
        raise NotImplementedError(f"prediction_type {scheduler.config.prediction_type!r}: only 'epsilon' is supported")
    alpha_prod = scheduler.alphas_cumprod.to(pred_noise.device)[timesteps].to(pred_noise.dtype)
    alpha_prod = alpha_prod[:, None, None, None, None]
    x0 = (x_t - (1 - alpha_prod) ** 0.5 * pred_noise) / alpha_prod**0.5
    if scheduler.config.clip_sample:
        x0 = x0.clamp(-1, 1)
    return x0
