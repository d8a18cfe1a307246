"""Tiny-config U-Net (configs/unet/tiny.yaml): training and inference behaviour that needs no reference data."""

from __future__ import annotations

import pytest
import torch

from latentsync.config import load_config, model_config
from latentsync.models.unet import UNet3DConditionModel

FRAMES = 4


@pytest.fixture(scope="module")
def config() -> dict:
    return model_config(load_config("configs/unet/tiny.yaml"))


@pytest.fixture()
def unet(config) -> UNet3DConditionModel:
    """Tiny model with every tensor randomised (zero-initialised layers would hide bugs)."""
    torch.manual_seed(0)
    model = UNet3DConditionModel.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0 / p[0].numel() ** 0.5) if p.ndim > 1 else p.normal_(0, 0.1)
    return model


def _inputs(config, batch=2, frames=FRAMES, height=8, width=8, seed=1):
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, config["in_channels"], frames, height, width, generator=generator)
    audio = torch.randn(batch * frames, 30, config["cross_attention_dim"], generator=generator)
    return sample, audio


def test_forward_backward(unet, config):
    sample, audio = _inputs(config)
    out = unet(sample, torch.tensor(500), encoder_hidden_states=audio).sample
    assert out.shape == (2, config["out_channels"], FRAMES, 8, 8) and out.is_contiguous()
    assert torch.isfinite(out).all() and out.std() > 1e-3
    out.square().mean().backward()
    no_grad = [name for name, p in unet.named_parameters() if p.grad is None or not p.grad.any()]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"


def test_gradient_checkpointing_gives_the_same_gradients(unet, config):
    sample, audio = _inputs(config)

    def gradients():
        unet.zero_grad()
        out = unet(sample, 10, encoder_hidden_states=audio).sample
        out.square().mean().backward()
        return out.detach(), {n: p.grad.clone() for n, p in unet.named_parameters()}

    out_plain, grads_plain = gradients()
    unet.enable_gradient_checkpointing()
    assert all(b.gradient_checkpointing for b in [*unet.down_blocks, unet.mid_block, *unet.up_blocks])
    out_ckpt, grads_ckpt = gradients()
    unet.disable_gradient_checkpointing()
    torch.testing.assert_close(out_ckpt, out_plain, rtol=0, atol=1e-6)
    for name, grad in grads_plain.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_forward(unet, config, dtype):
    sample, audio = _inputs(config)
    with torch.no_grad():
        reference = unet.eval()(sample, 10, encoder_hidden_states=audio).sample
        try:
            out = unet.to(dtype)(sample, 10, encoder_hidden_states=audio).sample  # inputs are cast to the model dtype
        except (RuntimeError, NotImplementedError) as err:  # pragma: no cover - depends on the torch build
            pytest.skip(f"{dtype} convolution/attention not supported on this CPU build: {err}")
    assert out.dtype == dtype and torch.isfinite(out).all()
    relative = (out.float() - reference).abs().max() / reference.abs().max()
    assert relative < 0.05, f"{dtype} output deviates by {relative:.3f} of the fp32 range"


@pytest.mark.parametrize("height,width", [(8, 12), (6, 10), (5, 7)])
def test_non_square_and_odd_latents(unet, config, height, width):
    """Odd sizes need the upsamplers to hit the skip connection sizes exactly."""
    sample, audio = _inputs(config, batch=1, height=height, width=width)
    with torch.no_grad():
        out = unet.eval()(sample, 10, encoder_hidden_states=audio).sample
    assert out.shape == (1, config["out_channels"], FRAMES, height, width)


def test_audio_layouts_and_batches_are_independent(unet, config):
    """(b*f, n, d) and (b, f, n, d) agree; each clip's output depends only on its own inputs."""
    sample, audio = _inputs(config)
    unet.eval()
    with torch.no_grad():
        both = unet(sample, 10, encoder_hidden_states=audio).sample
        four_d = unet(sample, 10, encoder_hidden_states=audio.reshape(2, FRAMES, 30, -1)).sample
        second = unet(sample[1:], 10, encoder_hidden_states=audio[FRAMES:]).sample
    assert torch.equal(both, four_d)
    torch.testing.assert_close(second, both[1:], rtol=0, atol=1e-5)


def test_audio_changes_the_output_and_none_skips_it(unet, config):
    sample, audio = _inputs(config)
    unet.eval()
    with torch.no_grad():
        with_audio = unet(sample, 10, encoder_hidden_states=audio).sample
        silent = unet(sample, 10, encoder_hidden_states=None).sample
        zeros = unet(sample, 10, encoder_hidden_states=torch.zeros_like(audio)).sample
    assert (with_audio - silent).abs().max() > 1e-3
    assert (zeros - silent).abs().max() > 1e-6  # zero audio still passes through attn2 (CFG's uncond)


def test_timestep_forms(unet, config):
    sample, audio = _inputs(config)
    unet.eval()
    with torch.no_grad():
        ref = unet(sample, torch.tensor(250), encoder_hidden_states=audio).sample
        for t in (250, torch.tensor([250]), torch.tensor([250, 250]), torch.tensor(250.0)):
            torch.testing.assert_close(unet(sample, t, encoder_hidden_states=audio).sample, ref, rtol=0, atol=0)
        other = unet(sample, torch.tensor([250, 900]), encoder_hidden_states=audio).sample
    assert torch.equal(other[0], ref[0]) and not torch.equal(other[1], ref[1])


def test_contiguous_activation_layout_gives_the_same_result(unet, config):
    sample, audio = _inputs(config, height=16, width=16)  # 16x16 frames run channels-last on CPU too
    unet.eval()
    with torch.no_grad():
        channels_last = unet(sample, 10, encoder_hidden_states=audio).sample
        unet.set_channels_last(False)
        contiguous = unet(sample, 10, encoder_hidden_states=audio).sample
    torch.testing.assert_close(contiguous, channels_last, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda s, a: (s[:, :4], a), "in_channels=13"),
        (lambda s, a: (s[:, :, 0], a), "must be \\(batch, channels, frames, height, width\\)"),
        (lambda s, a: (s, a[:FRAMES]), "must be \\(8, tokens, dim\\)"),
        (lambda s, a: (s, torch.zeros(8, 30, 384)), "cross_attention_dim is 64"),
        (lambda s, a: (torch.zeros(1, 13, 25, 8, 8), torch.zeros(25, 30, 64)), "at most 24"),
    ],
)
def test_bad_inputs_raise_clear_errors(unet, config, change, message):
    sample, audio = change(*_inputs(config))
    with pytest.raises(ValueError, match=message):
        unet(sample, 10, encoder_hidden_states=audio)


@pytest.mark.slow
def test_compiles_without_graph_breaks(unet, config):
    """torch.compile-friendliness: dynamo traces the whole forward as one graph."""
    import torch._dynamo

    sample, audio = _inputs(config)
    explanation = torch._dynamo.explain(unet.eval())(sample, torch.tensor(10), audio)
    assert explanation.graph_break_count == 0, explanation.break_reasons
