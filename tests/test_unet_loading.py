"""Checkpoint loading: official partial-load rules, reports, refusals with the right config named, safety."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from latentsync.checkpoint import CheckpointError
from latentsync.config import load_config, model_config
from latentsync.models.registry import IncompatibleCheckpointError, load_unet, load_unet_checkpoint
from latentsync.models.unet import UNet3DConditionModel

TINY = "configs/unet/tiny.yaml"


def _config(path: str = TINY, **overrides) -> dict:
    config = model_config(load_config(path))
    config.update(overrides)
    return config


def _randomised(config: dict, seed: int = 1) -> UNet3DConditionModel:
    """A model whose every tensor is non-zero, so 'kept init' and 'loaded' are distinguishable."""
    torch.manual_seed(seed)
    model = UNet3DConditionModel.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    return model.eval()


def _save(model, path: Path, step: int = 0) -> Path:
    torch.save({"state_dict": model.state_dict(), "global_step": step}, path)
    return path


def _inputs(config: dict, frames: int = 4):
    torch.manual_seed(3)
    sample = torch.randn(1, config["in_channels"], frames, 8, 8)
    audio = torch.randn(frames, 30, config["cross_attention_dim"])
    return sample, audio


def test_exact_load_reports_everything_loaded(tmp_path):
    source = _randomised(_config())
    path = _save(source, tmp_path / "unet.pt", step=42)
    model, step = load_unet(_config(), str(path))
    report = model.load_report
    assert step == 42 and report.global_step == 42
    assert report.exact and report.loaded == len(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_mismatched_conv_in_and_audio_width_are_skipped_keep_init_and_are_reported(tmp_path):
    # e.g. an SD-style 4-channel input layer and a 32-wide audio projection, loaded into the 13/64 config
    source = _randomised(_config(in_channels=4, cross_attention_dim=32))
    path = _save(source, tmp_path / "other_widths.pt", step=5)

    torch.manual_seed(0)
    model, step = load_unet(_config(), str(path))
    torch.manual_seed(0)
    fresh = UNet3DConditionModel.from_config(_config())

    skipped = {s.key for s in model.load_report.skipped}
    audio_kv = {k for k in fresh.state_dict() if "attn2.to_k." in k or "attn2.to_v." in k}
    assert skipped == {"conv_in.weight", "conv_in.bias"} | audio_kv
    assert audio_kv and not model.load_report.exact and step == 5
    state = model.state_dict()
    for key in skipped:  # kept their initialisation (conv_in is zero-initialised)
        assert torch.equal(state[key], fresh.state_dict()[key]), key
    assert not state["conv_in.weight"].any()
    for key, value in source.state_dict().items():
        if key not in skipped:
            assert torch.equal(state[key], value), key


def test_load_state_dict_keeps_official_semantics_without_mutating_the_callers_dict():
    source = _randomised(_config(in_channels=4))
    state_dict = source.state_dict()
    keys_before = list(state_dict)
    model = UNet3DConditionModel.from_config(_config())
    result = model.load_state_dict(state_dict, strict=False)
    assert list(state_dict) == keys_before, "the caller's dict must not be modified"
    assert set(result.missing_keys) == {"conv_in.weight", "conv_in.bias"} and not result.unexpected_keys
    with pytest.raises(RuntimeError, match="conv_in.weight"):  # strict: skipped layers count as missing
        model.load_state_dict(state_dict, strict=True)


def test_stage1_checkpoint_seeds_a_motion_model_as_identity(tmp_path):
    stage1 = _randomised(_config(use_motion_module=False))
    path = _save(stage1, tmp_path / "stage1.pt")
    model, _ = load_unet(_config(), str(path))
    report = model.load_report
    assert report.missing and all(".motion_modules." in k for k in report.missing)
    assert any("identity" in note for note in report.notes)
    sample, audio = _inputs(_config())
    with torch.no_grad():
        expected = stage1(sample, 10, audio).sample
        actual = model.eval()(sample, 10, audio).sample
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0)

    with pytest.raises(IncompatibleCheckpointError, match="partial load"):
        load_unet(_config(), str(path), allow_partial=False)


@pytest.mark.parametrize(
    "overrides,problem",
    [
        ({"use_motion_module": False}, "tensors the model does not have"),  # motion weights, no modules
        ({"block_out_channels": [32, 96]}, "other shapes"),  # different widths
        ({"motion_module_decoder_only": True}, "tensors the model does not have"),
    ],
)
def test_checkpoint_for_another_config_is_refused_naming_the_right_one(tmp_path, overrides, problem):
    path = _save(_randomised(_config()), tmp_path / "tiny.pt")
    with pytest.raises(IncompatibleCheckpointError) as err:
        load_unet(_config(**overrides), str(path))
    message = str(err.value)
    assert problem in message and str(path) in message
    assert "configs/unet/tiny.yaml" in message, message



def test_official_from_pretrained_signature_loads_what_load_unet_loads(tmp_path):
    """`UNet3DConditionModel.from_pretrained(model_config, ckpt_path, device)` (official) -> the same weights and step."""
    source = _randomised(_config())
    path = _save(source, tmp_path / "unet.pt", step=1234)
    model, step = UNet3DConditionModel.from_pretrained(_config(), str(path), device="cpu")
    expected, expected_step = load_unet(_config(), str(path))
    assert isinstance(model, UNet3DConditionModel) and step == expected_step == 1234
    assert model.load_report.exact and model.load_report.global_step == 1234
    assert list(model.state_dict()) == list(expected.state_dict())
    for key, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    fresh, fresh_step = UNet3DConditionModel.from_pretrained(_config(), "")
    assert fresh_step == 0 and fresh.load_report.notes == ["fresh initialisation"]


def test_official_from_pretrained_applies_the_same_checks(tmp_path):
    stage1 = _save(_randomised(_config(use_motion_module=False)), tmp_path / "stage1.pt")
    model, _ = UNet3DConditionModel.from_pretrained(_config(), str(stage1))  # the stage-1 hand-off: reported
    assert model.load_report.missing and all(".motion_modules." in k for k in model.load_report.missing)
    path = _save(_randomised(_config()), tmp_path / "tiny.pt")
    with pytest.raises(IncompatibleCheckpointError, match="other shapes"):
        UNet3DConditionModel.from_pretrained(_config(block_out_channels=[32, 96]), str(path))

def test_partial_motion_modules_are_refused(tmp_path):
    """A decoder-only-motion checkpoint into a full-motion config is a config mistake, not a hand-off."""
    path = _save(_randomised(_config(motion_module_decoder_only=True)), tmp_path / "efficient.pt")
    with pytest.raises(IncompatibleCheckpointError, match="motion modules but not at the places"):
        load_unet(_config(), str(path))


@pytest.mark.parametrize(
    "checkpoint_config,model_config_path,fitting",
    [
        ("configs/unet/stage2.yaml", "configs/unet/stage1.yaml", "configs/unet/stage2.yaml"),
        ("configs/unet/stage2.yaml", "configs/unet/stage2_efficient.yaml", "configs/unet/stage2_512.yaml"),
        ("configs/unet/stage2_efficient.yaml", "configs/unet/stage2.yaml", "configs/unet/stage2_efficient.yaml"),
    ],
)
def test_full_size_wrong_config_is_refused_on_meta(checkpoint_config, model_config_path, fitting):
    """Official-size checks without memory: shapes alone decide, before any tensor is copied."""
    with torch.device("meta"):
        state_dict = UNet3DConditionModel.from_config(_config(checkpoint_config)).state_dict()
        model = UNet3DConditionModel.from_config(_config(model_config_path))
    with pytest.raises(IncompatibleCheckpointError) as err:
        load_unet_checkpoint(model, state_dict, source="latentsync_unet.pt")
    message = str(err.value)
    assert fitting in message and f"The config given is the model section of {model_config_path}" in message


@pytest.mark.parametrize("config_name", ["stage1", "stage2"])
def test_stable_diffusion_15_weights_can_seed_training(config_name):
    """A diffusers SD-1.5 U-Net (4 input channels, 768-wide text attention) fits the official skip rules."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        sd15 = UNet2DConditionModel(cross_attention_dim=768).state_dict()
        model = UNet3DConditionModel.from_config(_config(f"configs/unet/{config_name}.yaml"))
    report = load_unet_checkpoint(model, sd15, source="sd15")
    skipped = {s.key for s in report.skipped}
    assert {"conv_in.weight", "conv_in.bias"} <= skipped
    assert all(k.startswith("conv_in.") or ".attn2.to_" in k for k in skipped) and len(skipped) == 34
    assert all(".motion_modules." in k for k in report.missing)
    assert bool(report.missing) == (config_name == "stage2") and not report.unexpected


def test_syncnet_checkpoint_is_identified_as_such(tmp_path):
    from latentsync.models.stable_syncnet import StableSyncNet

    syncnet = StableSyncNet(model_config(load_config("configs/syncnet/tiny.yaml")))
    path = tmp_path / "syncnet.pt"
    torch.save({"state_dict": syncnet.state_dict(), "global_step": 0}, path)
    with pytest.raises(IncompatibleCheckpointError, match=r"StableSyncNet checkpoint for configs/syncnet/tiny.yaml"):
        load_unet(_config(), str(path))


def test_safetensors_and_bare_state_dicts_load(tmp_path):
    from safetensors.torch import save_file

    source = _randomised(_config())
    state_dict = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state_dict, str(tmp_path / "unet.safetensors"), metadata={"global_step": "12"})
    model, step = load_unet(_config(), str(tmp_path / "unet.safetensors"))
    assert step == 12 and model.load_report.exact

    torch.save(state_dict, tmp_path / "bare.pt")
    model, step = load_unet(_config(), str(tmp_path / "bare.pt"))
    assert step == 0 and model.load_report.exact


def test_empty_ckpt_path_gives_fresh_init_and_step_0():
    model, step = load_unet(_config(), "")
    assert step == 0 and not model.conv_in.weight.any() and not model.load_report.exact


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage", "missing"])
def test_corrupt_or_missing_files_raise_clear_errors(tmp_path, damage):
    path = _save(_randomised(_config()), tmp_path / "unet.pt")
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
        expected = "truncated or corrupt"
    elif damage == "empty":
        path.write_bytes(b"")
        expected = "empty"
    elif damage == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 100)
        expected = "truncated or corrupt"
    else:
        path.unlink()
        expected = "not found"
    with pytest.raises(CheckpointError, match=expected) as err:
        load_unet(_config(), str(path))
    assert str(path) in str(err.value)


class _Trap:
    """Unpickling this would create a marker file: proof that nothing is ever unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickled_objects_are_never_executed(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "malicious.pt"
    torch.save({"state_dict": {}, "global_step": 0, "payload": _Trap(marker)}, path)
    with pytest.raises(CheckpointError, match="NOT unpickled"):
        load_unet(_config(), str(path))
    assert not marker.exists()


def test_from_pretrained_does_not_modify_the_callers_config(tmp_path):
    config = _config()
    before = copy.deepcopy(config)
    load_unet(config, "")
    assert config == before


def test_diffusers_from_pretrained_is_refused_with_the_right_loader_named():
    from latentsync.models.unet import UNet3DConditionModel

    with pytest.raises(TypeError, match="registry.load_unet"):
        UNet3DConditionModel.from_pretrained("checkpoints/latentsync_unet.pt")
