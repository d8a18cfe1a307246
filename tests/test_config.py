"""Every official config loads with the official values; overrides and the tiny configs work."""

from __future__ import annotations

import json

import pytest

from latentsync.config import ConfigError, load_config, model_config, resolve_config_path

UNET_CONFIGS = ["stage1", "stage1_512", "stage2", "stage2_512", "stage2_efficient", "tiny"]
SYNCNET_CONFIGS = ["syncnet_16_pixel_attn", "syncnet_16_pixel", "syncnet_16_latent", "syncnet_25_pixel", "tiny"]


@pytest.mark.parametrize("name", UNET_CONFIGS)
def test_unet_configs_load(name):
    cfg = load_config(f"configs/unet/{name}.yaml")
    model = model_config(cfg)
    assert model["in_channels"] == 13 and model["out_channels"] == 4
    assert cfg.data.num_frames == 16 and cfg.data.video_fps == 25
    assert not str(cfg.data.train_data_dir).startswith("/"), "data paths must be relative"


def test_unet_official_values():
    stage2 = load_config("configs/unet/stage2.yaml")
    assert model_config(stage2)["block_out_channels"] == [320, 640, 1280, 1280]
    assert stage2.model.use_motion_module and stage2.data.resolution == 256
    assert list(stage2.run.trainable_modules) == ["motion_modules.", "attentions."]
    assert load_config("configs/unet/stage2_512.yaml").data.resolution == 512
    assert not load_config("configs/unet/stage1.yaml").model.use_motion_module
    efficient = load_config("configs/unet/stage2_efficient.yaml")
    assert efficient.model.motion_module_decoder_only and efficient.run.trepa_loss_weight == 0
    # stage2 and stage2_512 share one architecture (official checkpoints 1.5 and 1.6 differ only in data)
    assert model_config(stage2) == model_config(load_config("configs/unet/stage2_512.yaml"))


@pytest.mark.parametrize("name", SYNCNET_CONFIGS)
def test_syncnet_configs_load(name):
    cfg = load_config(f"configs/syncnet/{name}.yaml")
    for enc in ("audio_encoder", "visual_encoder"):
        section = cfg.model[enc]
        assert len(section.block_out_channels) == len(section.downsample_factors) == len(section.attn_blocks)


def test_overrides():
    cfg = load_config("configs/unet/stage2.yaml", ["data.batch_size=2", "run.seed=7", "optimizer.lr=3e-4"])
    assert cfg.data.batch_size == 2 and cfg.run.seed == 7 and cfg.optimizer.lr == pytest.approx(3e-4)
    with pytest.raises(ConfigError, match="key=value"):
        load_config("configs/unet/stage2.yaml", ["data.batch_size"])
    with pytest.raises(ConfigError, match="not found"):
        resolve_config_path("configs/unet/nope.yaml")


def test_scheduler_and_tiny_json_configs():
    from latentsync.config import CONFIG_DIR

    sched = json.loads((CONFIG_DIR / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "DDIMScheduler" and sched["steps_offset"] == 1
    vae = json.loads((CONFIG_DIR / "vae" / "tiny.json").read_text())
    assert len(vae["block_out_channels"]) == 4  # 3 downsamples: latents are 1/8 of the frame, as with sd-vae
    dims = json.loads((CONFIG_DIR / "whisper" / "tiny_dims.json").read_text())
    tiny_unet = load_config("configs/unet/tiny.yaml")
    assert tiny_unet.model.cross_attention_dim == dims["n_audio_state"]


def test_repo_root_configs_is_the_package_folder():
    """The checkout's `configs` symlink and the package's folder are one set of files, named one way."""
    from latentsync.config import CONFIG_DIR, REPO_ROOT, config_name

    assert (REPO_ROOT / "configs").resolve() == CONFIG_DIR
    spellings = ["configs/unet/stage2.yaml", "latentsync/configs/unet/stage2.yaml",
                 str(REPO_ROOT / "configs" / "unet" / "stage2.yaml"), str(CONFIG_DIR / "unet" / "stage2.yaml")]
    assert {config_name(s) for s in spellings} == {"configs/unet/stage2.yaml"}
    assert config_name("no/such.yaml") == "no/such.yaml"
