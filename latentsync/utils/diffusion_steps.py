"""The training side of the diffusion arithmetic: training noise and the one-step x0 estimate. (Latents in
and out of the VAE and the mask at latent size are `latentsync.pipelines.conditioning`; the sampling loop is
`latentsync.pipelines.sampling.denoise`.)

Official semantics (scripts/train_unet.py, latentsync/utils/util.py):
- noise is one draw shared by all 16 frames, or with `use_mixed_noise` the "mixed" prior of
  https://arxiv.org/abs/2305.10474: shared * sqrt(a²/(1+a²)) + independent * sqrt(1/(1+a²)), unit variance;
- the clean-latent estimate from predicted noise is x0 = (x_t - sqrt(1 - ᾱ_t) ε) / sqrt(ᾱ_t).
All random draws take an explicit CPU generator so a step is reproducible on any device.
"""

from __future__ import annotations

import torch

from latentsync.utils.seeding import randn


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
