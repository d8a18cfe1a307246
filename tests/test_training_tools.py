"""tools/write_fileslist.py and tools/make_tiny_checkpoints.py produce what the trainers and the pipeline load."""

from __future__ import annotations

import numpy as np
import torch

from latentsync.config import load_config, model_config
from latentsync.data.clips import read_fileslist
from tests.training_fixtures import make_clips
from tools import write_fileslist
from tools.make_tiny_checkpoints import make_tiny_checkpoints


def test_write_fileslist_checks_and_lists_clips(tmp_path):
    good = make_clips(tmp_path / "a" / "nested", 2)
    short = make_clips(tmp_path / "b", 1, seed=9, seconds=1.0)[0]
    (tmp_path / "b" / "broken.mp4").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp_path / "b" / "notes.txt").write_text("not a clip")
    out = tmp_path / "lists" / "train.txt"

    assert write_fileslist.main(["--out", str(out), str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert len(read_fileslist(out)) == 4  # every mp4, recursively; other files ignored

    assert write_fileslist.main(["--out", str(out), "--check", "--min_frames", "48",
                                 str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert read_fileslist(out) == [str(p) for p in good]  # the broken and the 25-frame clip are left out
    assert str(short) not in out.read_text()

    assert write_fileslist.main(["--out", str(out), "--append", str(tmp_path / "a")]) == 0
    assert len(read_fileslist(out)) == 4


def test_tiny_checkpoints_load_where_they_are_used(tmp_path):
    from diffusers import AutoencoderKL

    from latentsync.models.registry import load_unet
    from latentsync.models.stable_syncnet import StableSyncNet
    from latentsync.whisper.audio2feature import Audio2Feature

    paths = make_tiny_checkpoints(tmp_path, seed=3)
    vae = AutoencoderKL.from_pretrained(paths["vae"])
    assert vae.config.latent_channels == 4 and 2 ** (len(vae.config.block_out_channels) - 1) == 8
    unet, step = load_unet(model_config(load_config("configs/unet/tiny.yaml")),
                                                      str(paths["unet"]), allow_partial=False)
    assert step == 0 and unet.load_report.exact
    # golden-style init: no all-zero weight, so every layer gets gradients (incl. conv_in/out, motion proj_out)
    assert all(p.abs().sum() > 0 for p in unet.parameters())
    StableSyncNet.from_pretrained(model_config(load_config("configs/syncnet/tiny.yaml")), paths["syncnet"])
    encoder = Audio2Feature(paths["whisper"], device="cpu")
    features = encoder.audio2feat(np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1)
    assert features.shape[1:] == (3, 64)  # 2 layers + input embedding, width 64 = tiny U-Net's audio width
    again = make_tiny_checkpoints(tmp_path / "again", seed=3)
    assert torch.equal(torch.load(again["unet"], weights_only=True)["state_dict"]["conv_in.weight"],
                       torch.load(paths["unet"], weights_only=True)["state_dict"]["conv_in.weight"])
