"""Guidance on part of the steps (`--guidance_fraction`): which steps double the batch, what the U-Net sees,
and that DeepCache's cached features survive the switch to the single batch."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

import scripts.inference as cli
from latentsync.api import LipsyncOptions
from latentsync.errors import InputError
from latentsync.pipelines.sampling import denoise, guided_step_count
from latentsync.validation import check_run_options
from tests.inference_fixtures import cli_args, face_clip, tiny_options


@pytest.mark.parametrize(("steps", "fraction", "interval", "expected"), [
    (10, 1.0, None, 10), (10, 0.5, None, 5), (10, 0.5, 3, 6), (10, 0.05, 3, 3), (10, 0.95, 3, 10),
    (20, 0.5, 3, 12), (4, 0.5, 3, 3), (7, 0.01, None, 1)])
def test_guided_step_count_rounds_up_to_a_full_network_step(steps, fraction, interval, expected):
    assert guided_step_count(steps, fraction, interval) == expected


class RecordingUNet(torch.nn.Module):
    """Stands in for the U-Net: records each call's batch and audio, predicts noise from the audio's mean."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, sample, t, encoder_hidden_states=None):
        self.calls.append((sample.shape[0], encoder_hidden_states.clone()))
        frames = sample.shape[2]
        level = encoder_hidden_states.mean(dim=(1, 2)).view(-1, frames).mean(dim=1)
        pred = sample[:, :4] * 0.1 + level.view(-1, 1, 1, 1, 1)
        return type("Out", (), {"sample": pred})()


def conditions(frames=3):
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, frames, 4, 4, generator=g)
    mask, masked, ref = torch.ones(1, 1, frames, 4, 4), torch.randn(1, 4, frames, 4, 4, generator=g), \
        torch.randn(1, 4, frames, 4, 4, generator=g)
    audio = torch.randn(frames, 5, 8, generator=g) + 1.0
    return latents, mask, masked, ref, audio


def test_guided_steps_drop_the_unconditional_half_after_the_count():
    unet, scheduler = RecordingUNet(), DDIMScheduler(num_train_timesteps=1000)
    latents, mask, masked, ref, audio = conditions()
    denoise(unet, scheduler, latents, mask, masked, ref, audio, num_inference_steps=5, guidance_scale=1.5,
            guided_steps=2)
    assert [batch for batch, _ in unet.calls] == [2, 2, 1, 1, 1]
    for _, seen in unet.calls[:2]:  # guided: [zeros (unconditional), audio]
        assert torch.equal(seen[:3], torch.zeros_like(audio)) and torch.equal(seen[3:], audio)
    for _, seen in unet.calls[2:]:  # afterwards the audio-conditioned half alone
        assert torch.equal(seen, audio)


def test_all_steps_guided_is_the_official_loop_and_changes_the_result():
    latents, mask, masked, ref, audio = conditions()
    runs = {}
    for guided in (None, 5, 2):
        unet = RecordingUNet()
        runs[guided] = denoise(unet, DDIMScheduler(num_train_timesteps=1000), latents, mask, masked, ref, audio,
                               num_inference_steps=5, guidance_scale=1.5, guided_steps=guided)
        assert len(unet.calls) == 5
    assert torch.equal(runs[None], runs[5])
    assert not torch.allclose(runs[None], runs[2])  # the unguided steps follow the audio alone


def test_guidance_fraction_is_checked_and_reaches_the_settings_line():
    for bad in (0, -0.5, 1.5, float("nan"), "half"):
        with pytest.raises(InputError, match="guidance_fraction"):
            check_run_options(10, 1.5, 0, bad)
    check_run_options(10, 1.5, 0, 0.5)
    options = LipsyncOptions.from_kwargs(preset="quality", guidance_fraction=0.5)
    assert options.guidance_fraction == 0.5
    # 10 of 20 steps, rounded up to DeepCache's next full-network step (interval 3): 12
    assert "guidance 1.5 on the first 12 steps only" in options.settings_line("cpu", torch.float32)
    assert options.sampler_kwargs()["guidance_fraction"] == 0.5
    assert LipsyncOptions.from_kwargs().guidance_fraction == 1.0  # the official run guides every step


def test_cli_flag_and_deepcache_switch_end_to_end(ckpts, tmp_path):
    """4 DDIM steps, DeepCache interval 3, fraction 0.5: guided steps 0-2, then the single batch from step 3, a
    full-network step; the shallow steps in between reuse features of the batch size they run at."""
    import latentsync
    from latentsync.utils.media import probe_video

    video, audio = face_clip(tmp_path, "clip", 0.8)
    args = cli.parse_args(cli_args(ckpts, video, audio, tmp_path / "o.mp4", "--guidance_fraction", "0.5"))
    assert cli.options_from_args(args).guidance_fraction == 0.5
    out = tmp_path / "half.mp4"
    result = latentsync.lipsync(str(video), str(audio), str(out),
                                **tiny_options(ckpts, inference_steps=4, guidance_fraction=0.5, dtype="fp32"))
    assert probe_video(out).num_frames == result.num_frames == 20
