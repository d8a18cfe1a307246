"""The config registry tells which official config a checkpoint belongs to (U-Net and SyncNet)."""

from __future__ import annotations

import pytest
import torch

from latentsync.config import load_config, model_config
from latentsync.models import registry
from tests.helpers import shared_json

UNET_MANIFESTS = ["stage2", "stage1", "stage2_efficient"]
SYNCNET_MANIFESTS = ["syncnet_16_pixel_attn", "syncnet_16_pixel", "syncnet_16_latent", "syncnet_25_pixel"]


def _manifest_shapes(filename: str) -> tuple[dict, dict]:
    manifest = shared_json("reference", filename)
    return manifest, {key: tuple(shape) for key, shape, _dtype in manifest["state_dict"]}


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", UNET_MANIFESTS)
def test_official_unet_layouts_are_identified(name):
    manifest, shapes = _manifest_shapes(f"unet_manifest_{name}.json")
    expected = sorted(f"configs/unet/{n}.yaml" for n in manifest["identical_model_sections"])
    assert sorted(registry.identify_checkpoint(shapes)) == expected
    assert sorted(registry.identify_checkpoint(shapes, kind="unet")) == expected
    assert registry.identify_checkpoint(shapes, kind="syncnet") == []


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", SYNCNET_MANIFESTS)
def test_official_syncnet_layouts_are_identified(name):
    _, shapes = _manifest_shapes(f"syncnet_manifest_{name}.json")
    assert registry.identify_checkpoint(shapes) == [f"configs/syncnet/{name}.yaml"]


@pytest.mark.needs_shared
def test_stage1_weights_are_a_loadable_seed_for_stage2():
    _, shapes = _manifest_shapes("unet_manifest_stage1.json")
    matches = {tuple(m.configs): m for m in registry.match_checkpoint(shapes, kind="unet")}
    stage2 = matches[("configs/unet/stage2.yaml", "configs/unet/stage2_512.yaml")]
    assert stage2.status == "loadable" and "motion-module" in stage2.notes[-1]
    assert matches[("configs/unet/stage1.yaml", "configs/unet/stage1_512.yaml")].status == "exact"


def test_checkpoint_files_are_identified(tmp_path):
    from latentsync.models.unet import UNet3DConditionModel

    with torch.device("cpu"):
        tiny = UNet3DConditionModel.from_config(model_config(load_config("configs/unet/tiny.yaml")))
    path = tmp_path / "tiny.pt"
    torch.save({"state_dict": tiny.state_dict(), "global_step": 3}, path)
    assert registry.identify_checkpoint(path) == ["configs/unet/tiny.yaml"]
    assert registry.identify_checkpoint(str(path), kind="unet") == ["configs/unet/tiny.yaml"]
    registry.check_config_fits("configs/unet/tiny.yaml", path)  # no error
    with pytest.raises(ValueError, match="does not fit configs/unet/stage2.yaml.*configs/unet/tiny.yaml"):
        registry.check_config_fits("configs/unet/stage2.yaml", path)


def test_identical_model_sections_are_grouped():
    section = model_config(load_config("configs/unet/stage2.yaml"))
    assert registry.configs_with_model_section(section, "unet") == [
        "configs/unet/stage2.yaml",
        "configs/unet/stage2_512.yaml",
    ]
    assert "configs/syncnet/syncnet_16_pixel_attn.yaml" in registry.known_configs("syncnet")
    with pytest.raises(ValueError, match="unknown model kind"):
        registry.known_configs("vae")


def test_unknown_weights_name_the_closest_config():
    with torch.device("meta"):
        from latentsync.models.unet import UNet3DConditionModel

        config = model_config(load_config("configs/unet/tiny.yaml"))
        config["block_out_channels"] = [32, 96]
        shapes = {k: tuple(v.shape) for k, v in UNet3DConditionModel.from_config(config).state_dict().items()}
    assert registry.identify_checkpoint(shapes) == []
    text = registry.describe_mismatch(shapes, kind="unet")
    assert "matches none of the known configs" in text and "configs/unet/tiny.yaml" in text
