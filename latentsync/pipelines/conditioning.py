"""What the U-Net is conditioned on, built once for inference and training alike.

- the fixed mouth mask (1 keeps the reference pixel, 0 is the region to regenerate), drawn from the geometric
  description in configs/faces.yaml (`fixed_mask`) instead of the official `latentsync/utils/mask.png`;
- the pixel values in [-1, 1], the masked images and the per-frame masks (the official
  `ImageProcessor.prepare_masks_and_masked_images` / `process_images`, batched);
- VAE encode and decode between pixels and scaled latents, a few frames per call;
- the mask at latent size.

Every number comes in as an argument (the mask geometry, the VAE's frames per call): the callers read them
from their settings. Official semantics (latentsync/utils/image_processor.py, scripts/train_unet.py,
the inference pipeline):
- the mask is the uint8 image LANCZOS4-resized to the resolution, then / 255 (float64);
- pixel values are (x / 255 - 0.5) / 0.5 after a bicubic antialiased resize; masked = pixels * mask;
- latents = (posterior sample - shift) * scaling (0.18215 for the SD VAE); decoding inverts it; the
  posterior noise is drawn on the generator's device in the posterior's dtype, exactly as diffusers'
  `latent_dist.sample(generator)` that the official inference pipeline calls;
- the mask goes to latent size by nearest-neighbour interpolation.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

OFFICIAL_MASK_PATH = "latentsync/utils/mask.png"  # what official configs name; generated here, not read
VAE_SCALE_FACTOR = 8

# ---------------------------------------------------------------------------------------------- the mask


def draw_base_mask(fixed_mask) -> np.ndarray:
    """The 256x256 mask a `fixed_mask` geometry (configs/faces.yaml) describes, single-channel uint8 {0, 255}.

    The official png is two side bands plus a rounded bowl over mouth and chin; the geometry stores its
    rows as spans, and this rebuilds the exact same pixels.
    """
    if len(fixed_mask.bowl.left) != len(fixed_mask.bowl.right):
        raise ValueError("fixed_mask.bowl.left and .right must have the same length")
    mask = np.full((fixed_mask.size, fixed_mask.size), 255, dtype=np.uint8)
    row0, row1 = fixed_mask.bands.rows
    for x0, x1 in fixed_mask.bands.spans:
        mask[row0:row1, x0:x1] = 0
    for offset, (x0, x1) in enumerate(zip(fixed_mask.bowl.left, fixed_mask.bowl.right, strict=True)):
        mask[fixed_mask.bowl.row_start + offset, x0:x1] = 0
    mask.setflags(write=False)
    return mask


def fixed_mask_rgb_u8(resolution: int, fixed_mask) -> np.ndarray:
    """(R, R, 3) uint8 mask as the official loader holds it just before `/ 255`: LANCZOS4-resized from 256.

    The three channels of the png are identical, so one channel is resized and repeated.
    """
    if resolution <= 0:
        raise ValueError(f"mask resolution must be positive, got {resolution}")
    resized = cv2.resize(draw_base_mask(fixed_mask), (resolution, resolution), interpolation=cv2.INTER_LANCZOS4)
    return np.repeat(resized[:, :, None], 3, axis=2)


def load_fixed_mask(resolution: int, mask_image_path: str | None = None, *, fixed_mask=None) -> torch.Tensor:
    """(3, R, R) float64 mask in [0, 1]: 1 keeps the reference pixel, 0 is the mouth region to regenerate.

    Identical to the official `load_fixed_mask` (RGB, LANCZOS4 resize of the uint8 image, / 255). With no
    path, or the official default path, the mask is drawn from `fixed_mask` (configs/faces.yaml's section);
    any other path is read as an image file.
    """
    if mask_image_path is None or (Path(mask_image_path).as_posix() == OFFICIAL_MASK_PATH
                                   and not Path(mask_image_path).is_file()):
        if fixed_mask is None:
            raise ValueError("load_fixed_mask: give the mask geometry (fixed_mask=, configs/faces.yaml `fixed_mask`) "
                             "or a mask image path")
        image = fixed_mask_rgb_u8(resolution, fixed_mask)
    else:
        bgr = cv2.imread(str(mask_image_path))
        if bgr is None:
            raise FileNotFoundError(f"mask image not found or unreadable: {mask_image_path} "
                                    f"(omit mask_image_path to use the built-in LatentSync mask)")
        image = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (resolution, resolution),
                           interpolation=cv2.INTER_LANCZOS4)
    return torch.from_numpy(image / 255.0).permute(2, 0, 1).contiguous()


def latent_mask(mask: torch.Tensor, vae_scale_factor: int = VAE_SCALE_FACTOR) -> torch.Tensor:
    """(1, R/8, R/8) mask at latent resolution: first channel, nearest interpolation (the pipeline's rule)."""
    size = (mask.shape[-2] // vae_scale_factor, mask.shape[-1] // vae_scale_factor)
    return F.interpolate(mask[0:1][None], size=size)[0]


def mask_to_latent(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(b, f, 1, H, W) or (f, 1, H, W) pixel masks -> (b or 1, 1, f, h, w) at latent size (nearest, as official)."""
    if masks.ndim == 4:
        masks = masks[None]
    b, f = masks.shape[:2]
    small = F.interpolate(rearrange(masks.float(), "b f c h w -> (b f) c h w"), size=tuple(size))
    return rearrange(small, "(b f) c h w -> b c f h w", b=b, f=f)


# ---------------------------------------------------------------------------------------------- pixel values


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8-range images -> [-1, 1], in the official order of operations (/255, then -0.5 and /0.5)."""
    return (images / 255.0 - 0.5) / 0.5


def resize_bicubic(images: torch.Tensor, size: int) -> torch.Tensor:
    """Square bicubic resize with antialias, like torchvision's Resize (uint8 in -> rounded uint8 out)."""
    batched = images if images.ndim == 4 else images[None]
    if batched.shape[-2:] == (size, size):
        return images
    out = F.interpolate(batched.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    if images.dtype == torch.uint8:
        out = out.round().clamp(0, 255).to(torch.uint8)
    return out if images.ndim == 4 else out[0]


def to_fchw(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) or (F, 3, H, W) frames, numpy or torch -> a (F, 3, H, W) tensor (a view where possible)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if images.shape[3] == 3:
        images = images.permute(0, 3, 1, 2)
    return images


def pixel_values(images: torch.Tensor | np.ndarray, resolution: int) -> torch.Tensor:
    """(F, 3, R, R) pixel values in [-1, 1] of uint8 frames (the reference images; official `process_images`)."""
    return normalize(resize_bicubic(to_fchw(images), resolution))


def masked_images(images: torch.Tensor | np.ndarray, mask: torch.Tensor):
    """(pixel values, masked pixel values, masks (F, 1, R, R)) of uint8 frames at the mask's resolution R.

    The official `prepare_masks_and_masked_images(images, affine_transform=False)`, in one batched resize
    instead of a per-frame loop (same numbers).
    """
    values = pixel_values(images, mask.shape[-1])
    return values, values * mask, mask[0:1].expand(len(values), -1, -1, -1).clone()


# ---------------------------------------------------------------------------------------------- the VAE


def _frame_slices(count: int, frames_per_call: int) -> list[slice]:
    step = count if frames_per_call <= 0 else frames_per_call
    return [slice(start, start + step) for start in range(0, count, step)]


def vae_factors(vae, scaling: float | None = None, shift: float | None = None) -> tuple[float, float]:
    cfg = vae.config
    if scaling is None:
        scaling = cfg.scaling_factor
    if shift is None:
        shift = getattr(cfg, "shift_factor", None) or 0.0
    return float(scaling), float(shift)


@torch.no_grad()
def posterior_moments(vae, pixels: torch.Tensor, *, frames_per_call: int) -> torch.Tensor:
    """(n, 3, H, W) pixels in [-1, 1] -> (n, 2, 4, H/8, W/8): each frame's posterior mean and std, on the VAE's device.

    The VAE sees `frames_per_call` frames at a time (0: all at once): its activations are a few hundred MB per
    256 px frame. The encoder's numbers depend (by about 1e-6) on which frames share a call, so the pipeline encodes
    one frame per call (configs/inference.yaml `vae.encode_frames_per_call`): a frame's moments are then the same
    wherever it is encoded, and moments kept for a frame shown again (ping-pong, loop) are exactly a fresh encode's.
    On the CPU the frames go in channels-last: oneDNN then runs the whole encoder in that layout, about 2x
    faster in bf16 (in NCHW it converts layouts back and forth); fp32 takes the same time either way
    (docs/benchmarks.md, "VAE layout").
    """
    device = next(vae.parameters()).device
    flat = pixels.to(device, vae.dtype)
    if device.type == "cpu":
        flat = flat.contiguous(memory_format=torch.channels_last)
    posteriors = [vae.encode(flat[part]).latent_dist for part in _frame_slices(len(flat), frames_per_call)]
    return torch.cat([torch.stack([p.mean, p.std], dim=1) for p in posteriors])


def sample_latents(moments: torch.Tensor, generator: torch.Generator | None, scaling: float, shift: float,
                   batch: int = 1) -> torch.Tensor:
    """(b f, 2, 4, h, w) posterior moments -> (b, 4, f, h, w) scaled latents: the posterior is sampled, not its mean,
    as the official, with one noise draw for all frames (so the result does not depend on `frames_per_call`)."""
    mean, std = moments[:, 0], moments[:, 1]
    draw_device = generator.device if generator is not None else mean.device
    noise = torch.randn(mean.shape, generator=generator, device=draw_device, dtype=mean.dtype).to(mean.device)
    sample = mean + std * noise
    return rearrange((sample - shift) * scaling, "(b f) c h w -> b c f h w", b=batch)


@torch.no_grad()
def encode_latents(vae, pixels: torch.Tensor, generator: torch.Generator | None, scaling: float | None = None,
                   shift: float | None = None, *, frames_per_call: int) -> torch.Tensor:
    """(b, f, 3, H, W) or (f, 3, H, W) pixels in [-1, 1] -> (b or 1, 4, f, H/8, W/8) scaled latents: the posterior
    moments (`posterior_moments`), sampled (`sample_latents`). `scaling`/`shift` default to the VAE config's."""
    if pixels.ndim == 4:
        pixels = pixels[None]
    scaling, shift = vae_factors(vae, scaling, shift)
    moments = posterior_moments(vae, rearrange(pixels, "b f c h w -> (b f) c h w"), frames_per_call=frames_per_call)
    return sample_latents(moments, generator, scaling, shift, batch=pixels.shape[0])


def decode_latents(vae, latents: torch.Tensor, scaling: float | None = None, shift: float | None = None, *,
                   frames_per_call: int) -> torch.Tensor:
    """(b, 4, f, h, w) scaled latents -> ((b f), 3, H, W) pixels (differentiable; official frame-major order).

    `frames_per_call` as for `encode_latents`: the decoder's activations are the largest of a run (about
    0.75 GB per 512 px frame in bf16), so it sees a few frames at a time.
    """
    scaling, shift = vae_factors(vae, scaling, shift)
    flat = (rearrange(latents, "b c f h w -> (b f) c h w") / scaling + shift).to(vae.dtype)
    parts = [vae.decode(flat[part]).sample for part in _frame_slices(len(flat), frames_per_call)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)
