"""The one VAE encode/decode pair (latentsync/pipelines/conditioning.py): a few frames per call, same result."""

from __future__ import annotations

import pytest
import torch

from latentsync.pipelines.conditioning import decode_latents, encode_latents
from latentsync.pipelines.settings import inference_settings


@pytest.fixture(scope="module")
def vae(ckpts):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(ckpts["vae"]).eval()


def _batch_sizes(monkeypatch, vae, name: str) -> list[int]:
    seen = []
    real = getattr(vae, name)

    def recording(x, *args, **kwargs):
        seen.append(len(x))
        return real(x, *args, **kwargs)

    monkeypatch.setattr(vae, name, recording)
    return seen


def test_the_vae_sees_the_configured_number_of_frames_per_call(vae, monkeypatch):
    per_call = inference_settings().vae.frames_per_call
    assert per_call > 0
    frames = 2 * per_call + 1
    encoded = _batch_sizes(monkeypatch, vae, "encode")
    decoded = _batch_sizes(monkeypatch, vae, "decode")
    latents = encode_latents(vae, torch.rand(frames, 3, 32, 32) * 2 - 1, torch.Generator().manual_seed(0),
                             frames_per_call=per_call)
    pixels = decode_latents(vae, latents, frames_per_call=per_call)
    assert encoded == decoded == [per_call, per_call, 1]
    assert latents.shape[2] == frames and pixels.shape[0] == frames


def test_one_frame_per_encoder_call_makes_a_frames_moments_independent_of_the_others(vae):
    from latentsync.pipelines.conditioning import posterior_moments

    per_call = inference_settings().vae.encode_frames_per_call
    pixels = torch.rand(7, 3, 32, 32) * 2 - 1
    together = posterior_moments(vae, pixels, frames_per_call=per_call)
    assert together.shape == (7, 2, 4, 4, 4)
    for rows in ([6], [3, 1], [2, 0, 5], [4, 5, 6, 0, 1]):  # alone, reordered, with other neighbours
        assert torch.equal(posterior_moments(vae, pixels[rows], frames_per_call=per_call), together[rows])


@pytest.mark.parametrize("per_call", [1, 2, 3])
def test_splitting_the_frames_changes_nothing(vae, per_call):
    pixels = torch.rand(2, 5, 3, 32, 32) * 2 - 1  # two clips of 5 frames, as training batches them
    # (kernels may round differently per batch size: fp32 rounding, not a change of result)
    whole = encode_latents(vae, pixels, torch.Generator().manual_seed(7), frames_per_call=0)
    split = encode_latents(vae, pixels, torch.Generator().manual_seed(7), frames_per_call=per_call)
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)  # one noise draw for all frames

    latents = whole.clone().requires_grad_(True)
    decode_latents(vae, latents, frames_per_call=0).square().sum().backward()
    whole_grad = latents.grad.clone()
    latents.grad = None
    decoded = decode_latents(vae, latents, frames_per_call=per_call)
    decoded.square().sum().backward()  # training decodes through it: the gradient is the same
    torch.testing.assert_close(decoded, decode_latents(vae, whole, frames_per_call=0), rtol=1e-5, atol=1e-5)
    assert (latents.grad - whole_grad).abs().max() <= 1e-5 * whole_grad.abs().max()  # relative to its scale
