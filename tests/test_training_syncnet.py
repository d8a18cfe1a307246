"""SyncNet training: official checkpoint format loadable by StableSyncNet, charts, and exact resumption."""

from __future__ import annotations

import pytest
import torch

from latentsync.config import load_config, model_config
from latentsync.data.syncnet_dataset import FrameEncoder
from latentsync.models.stable_syncnet import StableSyncNet
from latentsync.training.settings import SyncNetTrainingSettings, load_training_config
from latentsync.training.state import state_path_for
from scripts import train_syncnet
from tests.training_fixtures import make_clips

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
OFFICIAL_KEYS = {"state_dict", "global_step", "train_step_list", "train_loss_list", "val_step_list", "val_loss_list"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("syncnet_data")
    make_clips(root / "train", 3, seed=0)
    make_clips(root / "val", 2, seed=100)
    return root


def run(data, tmp_path, *extra):
    config = load_training_config("configs/syncnet/tiny.yaml", [
        f"data.train_data_dir={data / 'train'}", f"data.val_data_dir={data / 'val'}",
        f"data.train_output_dir={tmp_path / 'out'}", f"data.audio_mel_cache_dir={tmp_path / 'mel'}",
        "data.batch_size=2", "data.num_val_samples=4", "data.num_workers=0",
        "run.max_train_steps=4", "run.validation_steps=2", "ckpt.save_ckpt_steps=2", *extra])
    return train_syncnet.main(config)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    return run(data, tmp_path_factory.mktemp("full"))


def test_checkpoints_are_official_and_load_in_stablesyncnet(uninterrupted):
    ckpt_path = uninterrupted / "checkpoints" / "checkpoint-4.pt"
    ckpt = torch.load(ckpt_path, weights_only=True)
    assert OFFICIAL_KEYS <= set(ckpt)
    assert ckpt["global_step"] == 4 and ckpt["train_step_list"] == [1, 2, 3, 4]
    assert ckpt["val_step_list"] == [2, 4] and len(ckpt["val_loss_list"]) == 2
    assert all(0 <= acc <= 1 for acc in ckpt["val_acc_list"])
    model = StableSyncNet.from_pretrained(model_config(load_config("configs/syncnet/tiny.yaml")), ckpt_path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, ckpt["state_dict"][key])
    assert state_path_for(ckpt_path).is_file()  # optimizer sidecar for exact resumption


def test_training_changes_the_weights(uninterrupted):
    first = torch.load(uninterrupted / "checkpoints" / "checkpoint-2.pt", weights_only=True)["state_dict"]
    last = torch.load(uninterrupted / "checkpoints" / "checkpoint-4.pt", weights_only=True)["state_dict"]
    assert any(not torch.equal(first[k], last[k]) for k in first)


def test_loss_and_accuracy_charts_are_pngs(uninterrupted):
    for name in ("loss_chart-4.png", "accuracy_chart-4.png"):
        assert (uninterrupted / "loss_charts" / name).read_bytes()[:8] == PNG_SIGNATURE
    assert (uninterrupted / "config.yaml").is_file()


def test_resume_continues_like_an_uninterrupted_run(data, uninterrupted, tmp_path):
    resumed = run(data, tmp_path, f"ckpt.resume_ckpt_path={uninterrupted / 'checkpoints' / 'checkpoint-2.pt'}")
    full = torch.load(uninterrupted / "checkpoints" / "checkpoint-4.pt", weights_only=True)
    again = torch.load(resumed / "checkpoints" / "checkpoint-4.pt", weights_only=True)
    assert not (resumed / "checkpoints" / "checkpoint-2.pt").exists()  # the step count continued from 2
    assert again["train_step_list"] == [1, 2, 3, 4]
    # same data, same random draws, same optimizer state: the next losses and the weights match
    torch.testing.assert_close(torch.tensor(again["train_loss_list"]), torch.tensor(full["train_loss_list"]),
                               rtol=0, atol=1e-6)
    for key, value in full["state_dict"].items():
        torch.testing.assert_close(again["state_dict"][key], value, rtol=0, atol=1e-6)


def test_latent_space_syncnet_trains_on_vae_latents(data, tmp_path, ckpts):
    vae = ckpts["vae"]
    # 16 frames x 4 latent channels; lower half of 8x8 latents = 4x8 -> 1x1 after [1,2], 2, 2
    latent_model = ["model.visual_encoder.in_channels=64", "model.visual_encoder.block_out_channels=[32,64,64]",
                    "model.visual_encoder.downsample_factors=[[1,2],2,2]", "model.visual_encoder.attn_blocks=[0,0,0]"]
    run_dir = run(data, tmp_path, "data.latent_space=true", f"ckpt.vae_path={vae}", "run.max_train_steps=2",
                  *latent_model)
    config = load_training_config("configs/syncnet/tiny.yaml", ["data.latent_space=true", f"ckpt.vae_path={vae}",
                                                                 *latent_model])
    encoder = FrameEncoder(SyncNetTrainingSettings.from_config(config), torch.device("cpu"))
    frames = torch.rand(2, 16, 3, 64, 64) * 2 - 1
    assert encoder(frames, torch.Generator().manual_seed(0)).shape == (2, 64, 4, 8)
    ckpt = run_dir / "checkpoints" / "checkpoint-2.pt"
    StableSyncNet.from_pretrained(model_config(config), ckpt)


def test_gradient_accumulation_counts_optimizer_steps(data, tmp_path):
    run_dir = run(data, tmp_path, "data.gradient_accumulation_steps=2", "data.batch_size=1", "run.max_train_steps=2",
                  "data.num_val_samples=2")
    ckpt = torch.load(run_dir / "checkpoints" / "checkpoint-2.pt", weights_only=True)
    assert ckpt["global_step"] == 2 and ckpt["train_step_list"] == [1, 2]
    assert all(0 < loss < 5 for loss in ckpt["train_loss_list"])
