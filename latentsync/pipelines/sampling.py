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
import math
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


def guided_step_count(num_inference_steps: int, guidance_fraction: float, cache_interval: int | None = None) -> int:
    """How many leading steps use classifier-free guidance for `guidance_fraction` (0..1] of the steps.

    With DeepCache (`cache_interval`) the count is rounded up to a full-network step: the cached deep features
    have the batch size of the step that computed them, so the batch may only shrink where they are recomputed.
    """
    count = math.ceil(guidance_fraction * num_inference_steps - 1e-9)
    if cache_interval and cache_interval > 1:
        count = -(-count // cache_interval) * cache_interval
    return max(1, min(count, num_inference_steps))


def denoise(unet, scheduler, latents: torch.Tensor, mask_latents: torch.Tensor, masked_latents: torch.Tensor,
            ref_latents: torch.Tensor, audio_embeds: torch.Tensor | None, *, num_inference_steps: int,
            guidance_scale: float, generator: torch.Generator | None = None, eta: float = 0.0,
            guided_steps: int | None = None, on_step: Callable[[], None] | None = None) -> torch.Tensor:
    """Denoise (1, 4, f, h, w) `latents` of one clip given its conditions; returns the final latents.

    `mask_latents`, `masked_latents`, `ref_latents`: (1, c, f, h, w); `audio_embeds`: (f, tokens, dim) or None
    for a U-Net without audio layers. `guided_steps`: how many leading steps use classifier-free guidance
    (None: all, as the official; see `guided_step_count`). `on_step` is called after every step (progress bars).
    """
    scheduler.set_timesteps(num_inference_steps, device=latents.device)
    extra = step_kwargs(scheduler, generator, eta)
    do_cfg = guidance_scale > 1.0
    guided_steps = len(scheduler.timesteps) if guided_steps is None else guided_steps
    single = (mask_latents, masked_latents, ref_latents, audio_embeds)
    doubled = single
    if do_cfg:
        doubled = (*(torch.cat([x] * 2) for x in single[:3]),
                   None if audio_embeds is None else torch.cat([torch.zeros_like(audio_embeds), audio_embeds]))
    for index, t in enumerate(scheduler.timesteps):
        guided = do_cfg and index < guided_steps
        mask_in, masked_in, ref_in, audio_in = doubled if guided else single
        unet_input = torch.cat([latents] * 2) if guided else latents
        unet_input = scheduler.scale_model_input(unet_input, t)
        unet_input = torch.cat([unet_input, mask_in, masked_in, ref_in], dim=1)
        noise_pred = unet(unet_input, t, encoder_hidden_states=audio_in).sample
        if guided:
            noise_uncond, noise_audio = noise_pred.chunk(2)
            noise_pred = noise_uncond + guidance_scale * (noise_audio - noise_uncond)
        latents = scheduler.step(noise_pred, t, latents, **extra).prev_sample
        if on_step is not None:
            on_step()
    return latents
