"""StableSyncNet: checkpoint layout vs the official manifests, golden numerics, loading, checkpointing."""

from __future__ import annotations

import json

import pytest
import torch

from latentsync.checkpoint import CheckpointError
from latentsync.config import REPO_ROOT, load_config, model_config
from latentsync.models.stable_syncnet import (
    StableSyncNet,
    SyncNetConfigError,
)
from latentsync.models.sync_loss import (
    cosine_loss,
    sync_loss,
    sync_predictions,
    sync_probability,
)
from tests.helpers import shared_json, shared_tensors, state_dict_layout

MANIFEST_NAMES = ["syncnet_16_latent", "syncnet_16_pixel", "syncnet_16_pixel_attn", "syncnet_25_pixel"]
EMBED_ATOL = 1e-5


def _yaml_model(name: str) -> dict:
    return model_config(load_config(REPO_ROOT / "configs" / "syncnet" / f"{name}.yaml"))


def _load_golden():
    return shared_tensors("reference", "syncnet_small_golden.pt")


@pytest.fixture(scope="module")
def golden():
    return _load_golden()


@pytest.fixture(scope="module")
def golden_model(golden):
    model = StableSyncNet(json.loads(golden["config"]))
    model.load_state_dict(golden["state_dict"], strict=True)
    return model


# ---- architecture vs manifests ------------------------------------------------------------------


@pytest.mark.needs_shared
@pytest.mark.parametrize("name", MANIFEST_NAMES)
def test_state_dict_matches_official_manifest(name):
    manifest = shared_json("reference", f"syncnet_manifest_{name}.json")
    with torch.device("meta"):
        model = StableSyncNet(_yaml_model(name))
    ours = state_dict_layout(model.state_dict())
    assert ours == manifest["state_dict"]  # keys, shapes, dtypes and order
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]
    assert [n for n, _ in model.named_children()] == manifest["top_level_modules"]

    # Meta-device forward at the official input sizes gives the official (C, 1, 1) encoder outputs.
    image = torch.empty(1, *manifest["image_sequences_shape_per_sample"], device="meta")
    audio = torch.empty(1, *manifest["audio_sequences_shape_per_sample"], device="meta")
    with torch.no_grad():
        vision_raw, audio_raw = model.encode(image, audio)
    assert list(vision_raw.shape) == manifest["visual_encoder_output_shape"]
    assert list(audio_raw.shape) == manifest["audio_encoder_output_shape"]


@pytest.mark.needs_shared
def test_syncnet_25_pixel_yaml_matches_manifest_assumption():
    """Upstream's yaml lacks attn_blocks (KeyError there); ours spells out the zeros the manifest assumed."""
    manifest = shared_json("reference", "syncnet_manifest_syncnet_25_pixel.json")
    assert "attn_blocks" in manifest["construct_error"]
    ours = _yaml_model("syncnet_25_pixel")
    for encoder in ("audio_encoder", "visual_encoder"):
        assert ours[encoder] == manifest["config_used"][encoder]


def test_missing_attn_blocks_is_a_clear_error():
    config = _yaml_model("syncnet_25_pixel")
    del config["visual_encoder"]["attn_blocks"]
    with pytest.raises(SyncNetConfigError, match="visual_encoder.*attn_blocks"):
        StableSyncNet(config)


def test_mismatched_level_lists_are_rejected():
    config = _yaml_model("tiny")
    config["audio_encoder"]["attn_blocks"] = [0, 0]
    with pytest.raises(SyncNetConfigError, match="audio_encoder.attn_blocks"):
        StableSyncNet(config)


# ---- golden numerics ------------------------------------------------------------------------------


@pytest.mark.needs_shared
def test_golden_embeddings_and_raw_outputs(golden, golden_model):
    inputs, expected = golden["inputs"], golden["outputs"]
    with torch.no_grad():
        vision, audio = golden_model(inputs["image_sequences"], inputs["audio_sequences"])
        vision_raw, audio_raw = golden_model.encode(inputs["image_sequences"], inputs["audio_sequences"])
    torch.testing.assert_close(vision, expected["vision_embeds"], atol=EMBED_ATOL, rtol=0)
    torch.testing.assert_close(audio, expected["audio_embeds"], atol=EMBED_ATOL, rtol=0)
    # Raw features are O(1) before normalisation; 1e-5 relative to their scale.
    torch.testing.assert_close(vision_raw, expected["visual_encoder_raw"], atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(audio_raw, expected["audio_encoder_raw"], atol=2e-5, rtol=1e-5)
    assert torch.allclose(vision.norm(dim=1), torch.ones(3)) and torch.allclose(audio.norm(dim=1), torch.ones(3))
    assert (vision >= 0).all() and (audio >= 0).all()  # ReLU towers: similarities lie in [0, 1]


@pytest.mark.needs_shared
def test_golden_similarities_predictions_and_losses(golden, golden_model):
    inputs, expected = golden["inputs"], golden["outputs"]
    with torch.no_grad():
        vision, audio = golden_model(inputs["image_sequences"], inputs["audio_sequences"])
    torch.testing.assert_close(sync_probability(vision, audio), expected["cosine_similarity"], atol=EMBED_ATOL, rtol=0)
    assert torch.equal(sync_predictions(vision, audio), expected["sync_pred"])
    ones, zeros = torch.ones(3, 1), torch.zeros(3, 1)
    torch.testing.assert_close(cosine_loss(vision, audio, ones), expected["cosine_loss_y1"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cosine_loss(vision, audio, zeros), expected["cosine_loss_y0"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sync_loss(vision, audio), expected["cosine_loss_y1_mean"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        cosine_loss(vision, audio, zeros).mean(), expected["cosine_loss_y0_mean"], atol=1e-5, rtol=1e-5
    )


def test_cosine_loss_survives_rounding_above_one():
    v = torch.nn.functional.normalize(torch.rand(4, 7), dim=1)
    loss = cosine_loss(v, v.clone(), torch.ones(4, 1))
    assert loss.shape == (4,) and (loss < 1e-5).all()


# ---- checkpoint loading ---------------------------------------------------------------------------


@pytest.mark.needs_shared
def test_official_checkpoint_format_loads(golden, tmp_path):
    path = tmp_path / "stable_syncnet.pt"
    torch.save({**golden["checkpoint"], "global_step": 7, "train_loss_list": [0.5]}, path)
    config = json.loads(golden["config"])
    model = StableSyncNet(config)
    extras = model.load_checkpoint(path)
    assert extras == {"global_step": 7, "train_loss_list": [0.5]}
    for key, value in golden["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value), key
    assert not model.training


@pytest.mark.needs_shared
def test_safetensors_checkpoint_loads(golden, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "syncnet.safetensors"
    save_file({k: v.contiguous() for k, v in golden["state_dict"].items()}, str(path))
    model = StableSyncNet.from_pretrained(json.loads(golden["config"]), path)
    inputs = golden["inputs"]
    with torch.no_grad():
        vision, _ = model(inputs["image_sequences"], inputs["audio_sequences"])
    torch.testing.assert_close(vision, golden["outputs"]["vision_embeds"], atol=EMBED_ATOL, rtol=0)


def test_checkpoint_for_another_config_is_a_clear_error(tmp_path):
    tiny = StableSyncNet(_yaml_model("tiny"))
    path = tmp_path / "tiny.pt"
    torch.save({"state_dict": tiny.state_dict(), "global_step": 0}, path)
    other = _yaml_model("tiny")
    other["visual_encoder"]["block_out_channels"] = [32, 32, 32, 64, 64, 128]
    with pytest.raises(CheckpointError, match=r"does not fit.*wrong shape.*visual_encoder"):
        StableSyncNet(other).load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="syncnet checkpoint not found"):
        StableSyncNet(other).load_checkpoint(tmp_path / "absent.pt")


# ---- training-time behaviour ----------------------------------------------------------------------


def _tiny_batch(batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 48, 32, 64, generator=g), torch.randn(batch, 1, 80, 52, generator=g)


def test_tiny_config_forward_backward():
    torch.manual_seed(0)
    model = StableSyncNet(_yaml_model("tiny")).train()
    images, mel = _tiny_batch()
    vision, audio = model(images, mel)
    assert vision.shape == audio.shape == (2, 64)
    loss = cosine_loss(vision, audio, torch.tensor([[1.0], [0.0]])).mean()
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0


def test_gradient_checkpointing_is_numerically_identical():
    torch.manual_seed(0)
    plain = StableSyncNet(_yaml_model("tiny"))
    checkpointed = StableSyncNet(_yaml_model("tiny"), gradient_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    images, mel = _tiny_batch()

    def run(model):
        model.zero_grad()
        images_leaf = images.clone().requires_grad_(True)
        vision, audio = model(images_leaf, mel)
        sync_loss(vision, audio).backward()
        return vision, audio, images_leaf.grad, {n: p.grad.clone() for n, p in model.named_parameters()}

    v0, a0, gi0, g0 = run(plain)
    v1, a1, gi1, g1 = run(checkpointed)
    assert torch.equal(v0, v1) and torch.equal(a0, a1) and torch.equal(gi0, gi1)
    for name in g0:
        assert torch.equal(g0[name], g1[name]), name


def test_accepts_omegaconf_section_directly():
    cfg = load_config(REPO_ROOT / "configs" / "syncnet" / "tiny.yaml")
    with torch.device("meta"):
        from_omegaconf = StableSyncNet(cfg.model)
        from_dict = StableSyncNet(model_config(cfg))
    assert list(from_omegaconf.state_dict()) == list(from_dict.state_dict())
    assert from_omegaconf.config == from_dict.config
