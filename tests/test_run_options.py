"""Options are records checked once: configs/inference.yaml as typed settings, `LipsyncOptions` and the pipeline's
`SamplingOptions` refuse a bad or unknown value when they are made, and `build_pipeline` takes loaded models."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

from latentsync.api import LipsyncOptions, LoadedPipeline, build_pipeline, preset_values
from latentsync.config import CONFIG_DIR
from latentsync.errors import InputError
from latentsync.pipelines.options import SamplingOptions
from latentsync.pipelines.settings import InferenceSettings, inference_settings
from latentsync.settings import SettingsError
from tests.inference_fixtures import tiny_options


def test_the_packaged_inference_settings_are_typed():
    settings = inference_settings()
    assert settings is inference_settings()  # read once per process
    assert set(settings.presets) == {"quality", "fast"}
    assert settings.preset("fast").inference_steps == preset_values("fast")["inference_steps"]
    assert isinstance(settings.vae.frames_per_call, int) and isinstance(settings.deepcache.cache_interval, int)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.vae.frames_per_call = 3


@pytest.mark.parametrize(("key", "value", "message"), [
    ("vae.frames_per_call", -1, "vae.frames_per_call must be at least 0, got -1"),
    ("deepcache.cache_interval", "often", "deepcache.cache_interval must be an integer, got 'often'"),
    ("presets.fast.inference_steps", 0, "presets.fast.inference_steps must be at least 1, got 0"),
    ("allocator.keep_freed_memory", "maybe", "allocator.keep_freed_memory must be true or false, got 'maybe'"),
])
def test_a_bad_inference_setting_names_the_key_and_the_value(key, value, message):
    cfg = OmegaConf.load(CONFIG_DIR / "inference.yaml")
    OmegaConf.update(cfg, key, value)
    with pytest.raises(SettingsError, match=message):
        InferenceSettings.from_config(cfg, "inference.yaml")


def test_lipsync_options_check_themselves_once_and_stay_frozen():
    with pytest.raises(InputError, match="--inference_steps"):
        LipsyncOptions(inference_steps=0)
    with pytest.raises(InputError, match="unknown --scheduler 'euler'"):
        LipsyncOptions(scheduler="euler")
    with pytest.raises(InputError, match="unknown --preset 'best'"):
        LipsyncOptions.from_kwargs(preset="best")
    with pytest.raises(TypeError, match="guidance_scal"):
        LipsyncOptions().changed(guidance_scal=2.0)
    options = LipsyncOptions(face_position="10, 20")
    assert options.face_choice == "position" and options.face_position == (10.0, 20.0)  # normalised once
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.seed = 3
    fast = LipsyncOptions.from_kwargs(preset="fast", inference_steps=9)
    assert (fast.scheduler, fast.inference_steps) == ("dpmsolver++", 9)  # explicit values win over the preset


def test_sampling_options_refuse_what_the_pipeline_cannot_do():
    with pytest.raises(InputError, match="length_mode"):
        SamplingOptions(length_mode="stretch")
    with pytest.raises(ValueError, match="multiple of 8"):
        SamplingOptions(resolution=100)
    base = SamplingOptions(resolution=64)
    run = LipsyncOptions(guidance_fraction=0.5, enable_deepcache=False, length_mode="loop").sampling_options(base)
    assert (run.resolution, run.length_mode, run.guided_steps) == (64, "loop", 10)


def test_build_pipeline_uses_components_it_is_given(ckpts):
    loaded = build_pipeline(LipsyncOptions(**tiny_options(ckpts)))
    assert isinstance(loaded, LoadedPipeline) and loaded.clip.resolution == loaded.pipeline.unet.config.sample_size * 8
    pipeline = loaded.pipeline
    again = build_pipeline(LipsyncOptions(**tiny_options(ckpts, scheduler="dpmsolver++")), unet=pipeline.unet,
                           vae=pipeline.vae, audio_encoder=pipeline.audio_encoder,
                           clip=SamplingOptions(resolution=64, weight_dtype=torch.float32))
    assert again.pipeline.unet is pipeline.unet and again.pipeline.vae is pipeline.vae
    assert type(again.pipeline.scheduler).__name__ == "DPMSolverMultistepScheduler" and again.clip.resolution == 64
