"""The sampling loop, once: inference, U-Net validation (through the pipeline) and the learning proof call it.

Official semantics (LatentSync `LipsyncPipeline.__call__`): classifier-free guidance doubles the batch as
`[unconditional, audio]`, the unconditional half gets zero audio embeddings, and the U-Net input is
`cat([scaled latents, mask, masked-frame latents, reference latents])` on the channel axis.
Each call starts a fresh trajectory (`set_timesteps`): multistep solvers such as DPM-Solver++ keep state
between steps that must not leak from one 16-frame chunk into the next. DeepCache (when enabled on the
same `unet`/`scheduler` objects) keys on the position of `t` in `scheduler.timesteps`, so it needs nothing
from here.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch


def step_kwargs(scheduler, generator: torch.Generator | None, eta: float = 0.0) -> dict:
    """eta and generator only for schedulers whose `step` takes them (DDIM does; DPM-Solver++ takes no eta)."""
    params = inspect.signature(scheduler.step).parameters
    kwargs = {}
    if "eta" in params:
        kwargs["eta"] = eta
    if "generator" in params:
        kwargs["generator"] = generator
    return kwargs


def denoise(unet, scheduler, latents: torch.Tensor, mask_latents: torch.Tensor, masked_latents: torch.Tensor,
            ref_latents: torch.Tensor, audio_embeds: torch.Tensor | None, *, num_inference_steps: int,
            guidance_scale: float, generator: torch.Generator | None = None, eta: float = 0.0,
            on_step: Callable[[], None] | None = None) -> torch.Tensor:
    """Denoise (1, 4, f, h, w) `latents` of one clip given its conditions; returns the final latents.

    `mask_latents`, `masked_latents`, `ref_latents`: (1, c, f, h, w); `audio_embeds`: (f, tokens, dim) or None
    for a U-Net without audio layers. `on_step` is called after every step (progress bars).
    """
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    extra = step_kwargs(scheduler, generator, eta)
    do_cfg = guidance_scale > 1.0
    if do_cfg:
        mask_latents, masked_latents, ref_latents = (torch.cat([x] * 2) for x in
                                                     (mask_latents, masked_latents, ref_latents))
        if audio_embeds is not None:
            audio_embeds = torch.cat([torch.zeros_like(audio_embeds), audio_embeds])
    for t in scheduler.timesteps:
        unet_input = torch.cat([latents] * 2) if do_cfg else latents
        unet_input = scheduler.scale_model_input(unet_input, t)
        unet_input = torch.cat([unet_input, mask_latents, masked_latents, ref_latents], dim=1)
        noise_pred = unet(unet_input, t, encoder_hidden_states=audio_embeds).sample
        if do_cfg:
            noise_uncond, noise_audio = noise_pred.chunk(2)
            noise_pred = noise_uncond + guidance_scale * (noise_audio - noise_uncond)
        latents = scheduler.step(noise_pred, t, latents, **extra).prev_sample
        if on_step is not None:
            on_step()
    return latents
