"""Typed training settings: every packaged config builds, and a bad value stops with the key and the value;
library components take their YAML settings as arguments (the packaged file is only the default)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from omegaconf import OmegaConf

from latentsync.config import CONFIG_DIR, load_config
from latentsync.errors import InputError
from latentsync.training.settings import SettingsError, SyncNetTrainingSettings, UNetTrainingSettings

UNET_CONFIGS = sorted(p.name for p in (CONFIG_DIR / "unet").glob("*.yaml"))
SYNCNET_CONFIGS = sorted(p.name for p in (CONFIG_DIR / "syncnet").glob("*.yaml"))


@pytest.mark.parametrize("name", UNET_CONFIGS)
def test_every_unet_config_builds(name):
    settings = UNetTrainingSettings.load(f"configs/unet/{name}")
    assert isinstance(settings.optimizer.lr, float) and isinstance(settings.run.trainable_modules, tuple)
    assert settings.data.max_sample_attempts >= 1  # from configs/training/defaults.yaml


@pytest.mark.parametrize("name", SYNCNET_CONFIGS)
def test_every_syncnet_config_builds(name):
    settings = SyncNetTrainingSettings.load(f"configs/syncnet/{name}")
    assert isinstance(settings.data.video_fps, float) and settings.model["visual_encoder"]


@pytest.mark.parametrize(("override", "message"), [
    ("data.batch_size=0", "data.batch_size must be at least 1, got 0"),
    ("run.use_syncnet=maybe", "run.use_syncnet must be true or false, got 'maybe'"),
    ("optimizer.lr=fast", "optimizer.lr must be a number, got 'fast'"),
    ("data.audio_feat_length=[2,x]", "data.audio_feat_length[1] must be an integer, got 'x'"),
    ("run.max_train_epochs=-2", "run.max_train_epochs must be at least 1 (or -1), got -2"),
])
def test_a_bad_value_names_the_key_and_the_value(override, message):
    with pytest.raises(SettingsError, match=re.escape(message)) as error:
        UNetTrainingSettings.load("configs/unet/tiny.yaml", [override])
    assert isinstance(error.value, InputError) and "configs/unet/tiny.yaml" in str(error.value)


def test_a_missing_key_and_an_open_ended_run_are_refused(tmp_path):
    config = load_config("configs/syncnet/tiny.yaml")
    del config.data.lower_half
    path = tmp_path / "no_lower_half.yaml"
    path.write_text(OmegaConf.to_yaml(config))
    with pytest.raises(SettingsError, match="data.lower_half is missing"):
        SyncNetTrainingSettings.load(path)
    with pytest.raises(SettingsError, match="set run.max_train_steps or run.max_train_epochs"):
        UNetTrainingSettings.load("configs/unet/tiny.yaml", ["run.max_train_steps=-1", "run.max_train_epochs=-1"])


def test_an_empty_path_override_reads_as_unset():
    settings = UNetTrainingSettings.load("configs/unet/stage2.yaml", ["ckpt.resume_ckpt_path="])
    assert settings.ckpt.resume_ckpt_path == ""
    assert settings.whisper_path == "checkpoints/whisper/tiny.pt"  # the official choice for cross_attention_dim 384


def test_mask_and_mel_take_other_settings():
    from latentsync.config import audio_settings
    from latentsync.pipelines.conditioning import fixed_mask_rgb_u8
    from latentsync.utils.audio import melspectrogram

    faces = load_config("configs/faces.yaml", ["fixed_mask.bowl.row_start=0"])
    packaged = load_config("configs/faces.yaml").fixed_mask
    assert not np.array_equal(fixed_mask_rgb_u8(256, faces.fixed_mask), fixed_mask_rgb_u8(256, packaged))
    wav = np.random.default_rng(0).uniform(-0.5, 0.5, 1600)
    coarse = load_config("configs/audio.yaml", ["audio.hop_size=400"]).audio
    assert melspectrogram(wav, coarse).shape[1] < melspectrogram(wav, audio_settings()).shape[1]
