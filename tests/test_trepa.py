"""TREPA: VideoMAE-v2 layout vs the official ViT-g manifest, small-model golden, loss behaviour, loading."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from latentsync.checkpoint import CheckpointError
from latentsync.config import REPO_ROOT
from latentsync.trepa import TREPALoss, VideoMAEConfig, VideoMAEv2, load_videomae
from latentsync.trepa.videomae import read_videomae_state_dict
from tests.helpers import shared_fixture, shared_json, state_dict_layout

TINY = REPO_ROOT / "configs" / "trepa" / "tiny.yaml"
FEATURE_ATOL = 1e-4  # features of std ~1 (aux/README.md)
LOSS_RTOL = 1e-5  # scalar losses


golden = shared_fixture("reference", "aux", "videomae_small_golden.pt")


def _golden_model(golden, img_size: int) -> VideoMAEv2:
    cfg = dataclasses.replace(VideoMAEConfig.from_yaml(TINY), img_size=img_size)
    model = VideoMAEv2(cfg)
    model.load_state_dict(golden["state_dict"], strict=True)
    return model.eval()


def _tiny_loss(seed: int = 0) -> TREPALoss:
    torch.manual_seed(seed)
    return TREPALoss(device="cpu", model=VideoMAEv2(VideoMAEConfig.from_yaml(TINY)), config_path=TINY)


# ---- layout -----------------------------------------------------------------------------------------


@pytest.mark.needs_shared
def test_vit_g_state_dict_matches_official_manifest():
    manifest = shared_json("reference", "aux", "videomae_manifest_vit_g.json")
    cfg = VideoMAEConfig.from_yaml()
    with torch.device("meta"):
        model = VideoMAEv2(cfg)
    ours = state_dict_layout(model.state_dict())
    assert ours == manifest["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == manifest["num_params"]
    resolved = manifest["resolved"]
    assert cfg.mlp_hidden_dim == resolved["mlp_hidden"]
    assert cfg.embed_dim // cfg.num_heads == resolved["head_dim"]
    assert list(model.pos_embed.shape) == resolved["pos_embed_shape"] and not resolved["pos_embed_in_state_dict"]
    assert model.pos_embed.device.type == "cpu"  # real values even when built on meta


# ---- golden ------------------------------------------------------------------------------------------


@pytest.mark.needs_shared
def test_golden_forward_features(golden):
    model = _golden_model(golden, img_size=112)
    assert torch.equal(model.pos_embed, golden["pos_embed_112"])
    x = golden["video_uint8"].float() / 255
    with torch.no_grad():
        patches = model.patch_embed(x)
        block0 = model.blocks[0](patches + model.pos_embed)
        features = model.forward_features(x)
        logits = model(x)
    torch.testing.assert_close(patches, golden["patch_embed_out"], atol=FEATURE_ATOL, rtol=0)
    torch.testing.assert_close(block0, golden["block0_out"], atol=FEATURE_ATOL, rtol=0)
    torch.testing.assert_close(features, golden["forward_features"], atol=FEATURE_ATOL, rtol=0)
    torch.testing.assert_close(logits, golden["forward_logits"], atol=FEATURE_ATOL, rtol=0)


@pytest.mark.needs_shared
def test_golden_trepa_loss_and_gradient(golden):
    loss_fn = TREPALoss(device="cpu", model=_golden_model(golden, img_size=224), config_path=TINY)
    fake = golden["trepa_videos_fake"].float().requires_grad_(True)
    real = golden["trepa_videos_real"].float()

    model_input = loss_fn.prepare(fake)
    torch.testing.assert_close(model_input[0, :, 0], golden["trepa_model_input_fake_b0_f0"], atol=1e-6, rtol=0)
    for name, video in (("fake", model_input), ("real", loss_fn.prepare(real))):
        v = video.detach().double()
        stats = torch.stack([v.sum(), (v * v).sum(), v.min(), v.max()])
        torch.testing.assert_close(stats, golden[f"trepa_model_input_{name}_stats"], atol=0, rtol=1e-6)

    with torch.no_grad():
        feats_fake = loss_fn.model.forward_features(loss_fn.prepare(fake))
        feats_real = loss_fn.model.forward_features(loss_fn.prepare(real))
    torch.testing.assert_close(feats_fake, golden["trepa_feats_fake"], atol=FEATURE_ATOL, rtol=0)
    torch.testing.assert_close(feats_real, golden["trepa_feats_real"], atol=FEATURE_ATOL, rtol=0)
    torch.testing.assert_close(loss_fn.features(real), golden["trepa_feats_real_normalized"], atol=FEATURE_ATOL, rtol=0)

    loss = loss_fn(fake, real)
    torch.testing.assert_close(loss, golden["trepa_loss"], atol=0, rtol=LOSS_RTOL)
    loss.backward()
    grad_abs_sum = fake.grad.double().abs().sum().item()
    assert grad_abs_sum == pytest.approx(golden["trepa_grad_wrt_fake_abs_sum"], rel=LOSS_RTOL)
    expected_grad = golden["trepa_grad_wrt_fake_b0_f0"]
    torch.testing.assert_close(fake.grad[0, :, 0], expected_grad, atol=1e-5 * expected_grad.abs().max().item(), rtol=0)


# ---- behaviour ----------------------------------------------------------------------------------------


def _clips(seed: int, batch: int = 1, size: int = 32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, 16, size, size, generator=g) * 2 - 1


def test_loss_zero_for_identical_clips_and_positive_otherwise():
    loss_fn = _tiny_loss()
    clip = _clips(1)
    other = torch.linspace(-1, 1, 32).expand(1, 3, 16, 32, 32)  # smooth ramp vs. noise
    with torch.no_grad():
        same = loss_fn(clip, clip.clone())
        different = loss_fn(clip, other)
        slightly_different = loss_fn(clip, (clip + 0.05 * _clips(2)).clamp(-1, 1))
    assert same.item() == pytest.approx(0.0, abs=1e-12)
    assert different.item() > slightly_different.item() > 100 * same.item()
    # (2 - 2 cos) / dim: bounded by 4 / dim for unit vectors
    assert different.item() <= 4 / loss_fn.model.cfg.embed_dim


def test_gradients_flow_to_fake_only_and_model_is_frozen():
    loss_fn = _tiny_loss().train()
    assert not loss_fn.model.training
    fake = _clips(3).requires_grad_(True)
    real = _clips(4)
    loss_fn(fake, real).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0 and torch.isfinite(fake.grad).all()
    assert all(p.grad is None and not p.requires_grad for p in loss_fn.model.parameters())


def test_checkpointed_blocks_give_identical_loss_and_gradient():
    plain = _tiny_loss(seed=5)
    checkpointed = TREPALoss(device="cpu", model=VideoMAEv2(plain.model.cfg), with_cp=True, config_path=TINY)
    checkpointed.model.load_state_dict(plain.model.state_dict())
    results = []
    for loss_fn in (plain, checkpointed):
        fake = _clips(6).requires_grad_(True)
        loss = loss_fn(fake, _clips(7))
        loss.backward()
        results.append((loss.detach(), fake.grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_rejects_mismatched_or_malformed_clips():
    loss_fn = _tiny_loss()
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(_clips(1), _clips(2, size=40))
    with pytest.raises(ValueError, match=r"\(b, c, f, h, w\)"):
        loss_fn.prepare(torch.zeros(3, 16, 32, 32))


# ---- checkpoint loading --------------------------------------------------------------------------------


@pytest.mark.parametrize("wrapper", ["model", "module", None])
def test_official_checkpoint_wrappers_load_strictly(tmp_path, wrapper):
    cfg = VideoMAEConfig.from_yaml(TINY)
    torch.manual_seed(0)
    source = VideoMAEv2(cfg)
    state_dict = source.state_dict()
    path = tmp_path / "videomae.pth"
    torch.save({wrapper: state_dict, "epoch": 3} if wrapper else state_dict, path)
    loaded = load_videomae(path, cfg)
    for key, value in state_dict.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    clip = _clips(8) / 2 + 0.5
    clip = torch.nn.functional.interpolate(clip[0].transpose(0, 1), size=(224, 224)).transpose(0, 1)[None]
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_features(clip), source.forward_features(clip), atol=0, rtol=0)


def test_model_key_wins_over_module_and_bad_files_are_clear_errors(tmp_path):
    cfg = VideoMAEConfig.from_yaml(TINY)
    good = VideoMAEv2(cfg).state_dict()
    path = tmp_path / "both.pth"
    torch.save({"module": {"junk": torch.zeros(1)}, "model": good}, path)
    assert set(read_videomae_state_dict(path)) == set(good)

    prefixed = tmp_path / "prefixed.pth"
    torch.save({f"module.{k}": v for k, v in good.items()}, prefixed)
    with pytest.raises(CheckpointError, match="missing"):
        load_videomae(prefixed, cfg)
    with pytest.raises(FileNotFoundError, match="vit_g_hybrid_pt_1200e_ssv2_ft.pth"):
        load_videomae(tmp_path / "absent.pth", cfg)
