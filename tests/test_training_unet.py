"""U-Net training: stage 2 only moves the trainable modules, checkpoints load in from_pretrained and the
inference pipeline, resumption repeats an uninterrupted run, the stage-1 -> stage-2 hand-off starts the motion
modules as the identity, and two CPU processes (gloo) keep identical replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from latentsync.config import REPO_ROOT, load_config, model_config
from latentsync.models.registry import load_unet
from latentsync.training.logs import loss_log_path, read_loss_log
from latentsync.training.settings import load_training_config
from scripts import train_unet
from tests.training_fixtures import make_clips, tiny_overrides
from tools.make_tiny_checkpoints import randomize_

TINY = "configs/unet/tiny.yaml"
STAGE1 = ["model.use_motion_module=false", "run.pixel_space_supervise=false", "run.use_syncnet=false",
          "ckpt.resume_ckpt_path="]  # stage 1 starts from the official init
FAST_STAGE2 = ["run.perceptual_loss_weight=0"]  # LPIPS' VGG16 dominates CPU time; wired in its own test


@pytest.fixture(scope="module")
def env(tmp_path_factory, ckpts):
    root = tmp_path_factory.mktemp("unet_training")
    make_clips(root / "clips", 3)
    return {"root": root, "ckpts": ckpts, "data": root / "clips"}


def config(env, out: Path, *extra):
    base = tiny_overrides(env["ckpts"], env["data"], out, env["root"] / "cache")
    return load_training_config(TINY, [*base, f"ckpt.resume_ckpt_path={env['ckpts']['unet']}",
                                       "run.validation_steps=1000", "run.max_train_steps=2",
                                       "ckpt.save_ckpt_steps=1", *extra])


def state_dict(path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def loss_history(run: Path) -> dict[str, list]:
    """A run's loss log as columns: {"step": [...], "total": [...], "recon": [...], ...}."""
    rows = read_loss_log(loss_log_path(run / "checkpoints"))
    return {key: [row[key] for row in rows] for key in rows[0]}


@pytest.fixture(scope="module")
def stage2_run(env):
    return train_unet.main(config(env, env["root"] / "stage2", *FAST_STAGE2))


def test_stage2_changes_only_the_trainable_modules(env, stage2_run):
    before = state_dict(env["ckpts"]["unet"])
    after = state_dict(stage2_run / "checkpoints" / "checkpoint-2.pt")
    patterns = list(load_config(TINY).run.trainable_modules)  # motion_modules., attentions.
    trainable = [k for k in before if any(p in k for p in patterns)]
    frozen = [k for k in before if k not in trainable]
    assert trainable and frozen
    assert all(torch.equal(before[k], after[k]) for k in frozen)  # bit-identical
    changed = [k for k in trainable if not torch.equal(before[k], after[k])]
    assert len(changed) > 0.9 * len([k for k in trainable if "pos_encoder" not in k])
    assert (stage2_run / "loss_charts" / "loss_chart-2.png").read_bytes()[:4] == b"\x89PNG"


def test_validation_is_skipped_with_a_message_when_files_are_missing(env, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="train_unet"):
        run = train_unet.main(config(env, env["root"] / "val_skip", *STAGE1, "run.max_train_steps=1",
                                     "run.validation_steps=1", "data.val_video_path=missing.mp4"))
    assert any("validation skipped" in r.message for r in caplog.records)
    assert (run / "checkpoints" / "checkpoint-1.pt").is_file()  # training went on


def test_validation_writes_a_video(env, tmp_path):
    from tools.make_demo_clip import make_demo_clip

    video, audio = make_demo_clip(tmp_path, seconds=1.0, width=160, height=200)
    run = train_unet.main(config(env, tmp_path / "val", *STAGE1, "run.max_train_steps=1", "run.validation_steps=1",
                                 f"data.val_video_path={video}", f"data.val_audio_path={audio}",
                                 "run.inference_steps=2"))
    assert (run / "val_videos" / "val_video_1.mp4").stat().st_size > 0


def test_checkpoint_loads_in_from_pretrained(stage2_run):
    path = stage2_run / "checkpoints" / "checkpoint-2.pt"
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"global_step", "state_dict"} and ckpt["global_step"] == 2
    unet, step = load_unet(model_config(load_config(TINY)), str(path))
    assert step == 2 and unet.load_report.exact
    for key, value in unet.state_dict().items():
        assert torch.equal(value, ckpt["state_dict"][key])


def test_checkpoint_loads_in_the_inference_pipeline(env, stage2_run):
    api = pytest.importorskip("latentsync.api")
    options = api.LipsyncOptions(unet_config_path=TINY, inference_ckpt_path=str(stage2_run / "checkpoints" /
                                 "checkpoint-2.pt"), vae_path=str(env["ckpts"]["vae"]),
                                 whisper_path=str(env["ckpts"]["whisper"]), inference_steps=2, device="cpu",
                                 progress=False)
    pipeline = api.build_pipeline(options).pipeline  # verifies the checkpoint against the config
    trained = state_dict(stage2_run / "checkpoints" / "checkpoint-2.pt")
    unet = pipeline.unet
    assert all(torch.equal(v.float(), trained[k]) for k, v in unet.state_dict().items())


def test_checkpoint_lip_syncs_a_video(env, stage2_run, tmp_path):
    api = pytest.importorskip("latentsync.api")
    from tools.make_demo_clip import make_demo_clip

    video, audio = make_demo_clip(tmp_path, seconds=1.0, width=160, height=200)
    api.lipsync(str(video), str(audio), str(tmp_path / "out.mp4"), unet_config_path=TINY,
                inference_ckpt_path=str(stage2_run / "checkpoints" / "checkpoint-2.pt"),
                vae_path=str(env["ckpts"]["vae"]), whisper_path=str(env["ckpts"]["whisper"]), inference_steps=2,
                device="cpu", progress=False)
    assert (tmp_path / "out.mp4").stat().st_size > 0


def test_resume_gives_the_same_next_loss(env, stage2_run):
    first = stage2_run / "checkpoints" / "checkpoint-1.pt"
    resumed = train_unet.main(config(env, env["root"] / "resumed", *FAST_STAGE2, f"ckpt.resume_ckpt_path={first}"))
    assert not (resumed / "checkpoints" / "checkpoint-1.pt").exists()  # continued at step 1
    full, again = loss_history(stage2_run), loss_history(resumed)
    assert again["step"] == [1, 2]
    torch.testing.assert_close(torch.tensor(again["total"]), torch.tensor(full["total"]), rtol=0, atol=1e-6)
    a = state_dict(stage2_run / "checkpoints" / "checkpoint-2.pt")
    b = state_dict(resumed / "checkpoints" / "checkpoint-2.pt")
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6)


def test_stage2_loss_includes_lpips_and_sync(env):
    run = train_unet.main(config(env, env["root"] / "lpips", "run.max_train_steps=1", "data.batch_size=1"))
    history = loss_history(run)
    assert history["lpips"][0] > 0 and history["sync"][0] > 0 and history["recon"][0] > 0
    weights = load_config(TINY).run
    expected = (history["recon"][0] * weights.recon_loss_weight + history["sync"][0] * weights.sync_loss_weight
                + history["lpips"][0] * weights.perceptual_loss_weight)
    assert abs(history["total"][0] - expected) < 1e-5


def test_stage1_checkpoint_starts_stage2_with_identity_motion_modules(env, tmp_path):
    stage1_cfg = model_config(load_training_config(TINY, STAGE1))
    unet1, _ = load_unet(stage1_cfg, "")
    randomize_(unet1, torch.Generator().manual_seed(1))  # a "trained" stage-1 model: no zero layers
    stage1_ckpt = tmp_path / "stage1.pt"
    torch.save({"state_dict": unet1.state_dict(), "global_step": 7}, stage1_ckpt)
    assert not any("motion_modules" in k for k in unet1.state_dict())
    unet2, step = load_unet(model_config(load_config(TINY)), str(stage1_ckpt))
    assert step == 7 and any("identity" in note for note in unet2.load_report.notes)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 13, 16, 8, 8, generator=generator)
    audio = torch.randn(1, 16, 30, 64, generator=generator)
    with torch.no_grad():
        out1 = unet1.eval()(sample, 500, encoder_hidden_states=audio).sample
        out2 = unet2.eval()(sample, 500, encoder_hidden_states=audio).sample
    torch.testing.assert_close(out2, out1, rtol=0, atol=1e-6)  # motion modules add exactly zero


def test_stage2_training_resumes_a_stage1_run(env):
    stage1 = train_unet.main(config(env, env["root"] / "stage1", *STAGE1, "run.max_train_steps=1"))
    stage1_ckpt = stage1 / "checkpoints" / "checkpoint-1.pt"
    assert not any("motion_modules" in k for k in state_dict(stage1_ckpt))
    # different trainable set -> weights are taken, the optimizer starts fresh, the step count continues
    stage2 = train_unet.main(config(env, env["root"] / "handoff", *FAST_STAGE2, f"ckpt.resume_ckpt_path={stage1_ckpt}"))
    after = state_dict(stage2 / "checkpoints" / "checkpoint-2.pt")
    assert torch.load(stage2 / "checkpoints" / "checkpoint-2.pt", weights_only=True)["global_step"] == 2
    assert any("motion_modules" in k for k in after)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_cpu_processes_keep_identical_replicas(env, tmp_path):
    cfg = config(env, tmp_path / "ddp", *FAST_STAGE2, "data.batch_size=1")
    cfg_path = tmp_path / "ddp.yaml"
    from omegaconf import OmegaConf

    OmegaConf.save(cfg, cfg_path)
    # accelerate 1.x: `--cpu --num_processes 2` runs ONE process unless MPI is configured; the torchrun-based
    # launcher (`--multi_gpu`) starts two, and the trainer's Accelerator falls back to CPU + gloo without CUDA.
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(free_port()), "-m", "scripts.train_unet", "--unet_config_path", str(cfg_path)]
    env_vars = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(launcher, cwd=REPO_ROOT, env=env_vars, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "ddp").glob("train-*/checkpoints/checkpoint-2.state.pt"))
    assert len(runs) == 1, f"expected one run folder written by rank 0, got {runs}"
    state = torch.load(runs[0], weights_only=True)
    assert state["num_processes"] == 2
    assert state["replica_spread"] == 0.0  # parameter fingerprints of both ranks are identical
    history = loss_history(runs[0].parent.parent)
    json.dumps(history)  # plain data only
    assert history["step"] == [1, 2] and "history" not in state  # one log, written by rank 0; a small sidecar
