"""Train the LatentSync U-Net (stage 1, stage 2, stage2_efficient, 256 or 512 px configs); the command line is
latentsync/cli/train_unet.py.

Stage 1 (`pixel_space_supervise: false`, no motion modules): noise-prediction MSE, every parameter trains.
Stage 2: the same MSE plus pixel-space losses on the one-step clean estimate decoded by the VAE (gradient
checkpointed): LPIPS on the lower half of the face, TREPA, and the frozen SyncNet's sync loss, weighted by
the config; only parameters whose names contain one of `run.trainable_modules` train (motion modules and
attentions). Resuming a stage-1 checkpoint with a stage-2 config is the stage hand-off: the motion modules
are absent from it and start as the identity (zero-initialised output projections).

Every `ckpt.save_ckpt_steps`: <run>/checkpoints/checkpoint-N.pt = {"global_step", "state_dict"} (official,
loadable by latentsync.models.registry.load_unet and the inference pipeline) and checkpoint-N.state.pt
(optimizer, LR scheduler, grad scaler) so that `ckpt.resume_ckpt_path=.../checkpoint-N.pt` continues exactly;
the per-step losses are appended to <run>/checkpoints/losses.jsonl (a resumed run's log starts with the steps
it continues). The config is checked once into `latentsync.training.settings.UNetTrainingSettings`.
Every `run.validation_steps`: the inference pipeline lip-syncs data.val_video_path to data.val_audio_path into
<run>/val_videos/ (skipped with a log line if the pipeline or the files are unavailable). Loss charts go to
<run>/loss_charts/. Paths of the VAE, Whisper and SyncNet weights: ckpt.vae_path, ckpt.whisper_path,
ckpt.syncnet_ckpt_path (defaults in configs/training/defaults.yaml).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from latentsync.config import CONFIG_DIR
from latentsync.data.unet_dataset import UNetDataset
from latentsync.pipelines.settings import inference_settings
from latentsync.training.data_order import EpochShardSampler, make_loader, training_batches
from latentsync.training.logs import LossMeter, append_loss_log, loss_log_path, plot_chart, read_loss_log
from latentsync.training.loop import finish_training, make_run_dir, prepare_for_training, start_process, to_device
from latentsync.training.ranks import checkpoint_facts
from latentsync.training.settings import UNetTrainingSettings
from latentsync.training.state import atomic_save, load_training_state, save_training_state
from latentsync.training.unet_models import load_frozen_syncnet, load_perceptual_losses, load_vae, select_trainable
from latentsync.training.unet_step import LOSS_NAMES, UNetTrainer
from latentsync.training.unet_validation import run_validation
from latentsync.utils.seeding import step_generator

logger = logging.getLogger("train_unet")


# ---------------------------------------------------------------------------------------------- set-up


def load_models(settings: UNetTrainingSettings, accelerator, weight_dtype):
    """(U-Net, the step its checkpoint reached, a UNetTrainer holding the frozen parts that score it)."""
    from diffusers import DDIMScheduler

    from latentsync.models.registry import load_unet

    device = accelerator.device
    noise_scheduler = DDIMScheduler.from_pretrained(str(CONFIG_DIR))
    vae = load_vae(settings, device, weight_dtype)
    unet, resume_step = load_unet(settings.model, settings.ckpt.resume_ckpt_path, device="cpu")
    unet.to(device)  # before the optimizer exists, so resumed optimizer state lands on the same device
    syncnet, syncnet_settings = load_frozen_syncnet(settings, device, weight_dtype)
    lpips, trepa = load_perceptual_losses(settings, device)
    trainer = UNetTrainer(settings, accelerator, vae, noise_scheduler, syncnet, syncnet_settings, lpips, trepa,
                          vae_frames_per_call=inference_settings().vae.frames_per_call)
    return unet, resume_step, trainer


def make_optimizer(unet, settings: UNetTrainingSettings, world: int):
    """(names of the trainable tensors, the tensors, AdamW over them); the official LR scaling by process count."""
    opt = settings.optimizer
    trainable = select_trainable(unet, settings)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opt.lr * (world if opt.scale_lr else 1))
    if settings.run.enable_gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    return trainable, params, optimizer


def make_data(settings: UNetTrainingSettings, world: int, rank: int):
    """(dataset, sampler, loader, the last step): `run.max_train_steps`, or whole epochs when it is -1."""
    data, run = settings.data, settings.run
    dataset = UNetDataset(data.train_data_dir, settings)
    sampler = EpochShardSampler(len(dataset), world, rank, seed=run.seed)
    loader = make_loader(dataset, data.batch_size, sampler, data.num_workers)
    max_steps = run.max_train_steps if run.max_train_steps != -1 else run.max_train_epochs * len(loader)
    return dataset, sampler, loader, max_steps


def make_lr_scheduler(settings: UNetTrainingSettings, optimizer, max_steps: int):
    from diffusers.optimization import get_scheduler

    opt = settings.optimizer
    return get_scheduler(opt.lr_scheduler, optimizer=optimizer, num_warmup_steps=opt.lr_warmup_steps,
                         num_training_steps=max_steps)


def resume_training(checkpoint, trainable, resume_step: int, optimizer, lr_scheduler) -> tuple[dict | None, list]:
    """(the sidecar state, the loss log up to `resume_step`) of the checkpoint resumed, with the optimizer and the
    LR schedule restored; (None, []) for a fresh start or a sidecar of another trainable set (stage hand-off)."""
    state = load_training_state(checkpoint, trainable) if checkpoint else None
    if state is None:
        return None, []
    optimizer.load_state_dict(state["optimizer"])
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    return state, read_loss_log(loss_log_path(Path(checkpoint).parent), up_to_step=resume_step)


def start_loss_log(run_dir: Path, history: list[dict], is_main: bool) -> Path:
    """The run's loss log; a resumed run's starts with the steps it continues."""
    loss_log = loss_log_path(run_dir / "checkpoints")
    if is_main:
        append_loss_log(loss_log, history)
    return loss_log


# ---------------------------------------------------------------------------------------------- outputs


def save_checkpoint(run_dir: Path, unet, optimizer, lr_scheduler, scaler, trainable, step,
                    settings: UNetTrainingSettings, **facts) -> Path:
    path = run_dir / "checkpoints" / f"checkpoint-{step}.pt"
    atomic_save({"global_step": step, "state_dict": unet.state_dict()}, path)
    if settings.ckpt.save_training_state:
        save_training_state(path, optimizer, lr_scheduler, scaler, trainable_names=trainable, **facts)
    logger.info("saved checkpoint %s", path)
    return path


def write_chart(run_dir: Path, history: list[dict], step: int) -> None:
    steps = [row["step"] for row in history]
    series = [("Total loss", steps, [row["total"] for row in history])]
    series += [(f"{name} loss", steps, [row[name] for row in history]) for name in LOSS_NAMES
               if any(row[name] for row in history)]
    plot_chart(run_dir / "loss_charts" / f"loss_chart-{step}.png", *series, title="U-Net training loss")


# ---------------------------------------------------------------------------------------------- main


def main(config: DictConfig) -> Path:
    """Train as configured (a config from `load_training_config`, checked once into UNetTrainingSettings);
    returns the run folder (checkpoints/ with the loss log, loss_charts/, val_videos/, config.yaml)."""
    settings = UNetTrainingSettings.from_config(config)
    data, run, ckpt = settings.data, settings.run, settings.ckpt
    accelerator = start_process(run.mixed_precision_training, run.seed, data.train_output_dir, ckpt.resume_ckpt_path,
                                find_unused_parameters=run.find_unused_parameters)
    weight_dtype = torch.float16 if accelerator.mixed_precision == "fp16" else torch.float32
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    is_main = accelerator.is_main_process

    unet, resume_step, trainer = load_models(settings, accelerator, weight_dtype)
    trainable, params, optimizer = make_optimizer(unet, settings, world)
    dataset, sampler, loader, max_steps = make_data(settings, world, rank)
    lr_scheduler = make_lr_scheduler(settings, optimizer, max_steps)
    state, history = resume_training(ckpt.resume_ckpt_path, trainable, resume_step, optimizer, lr_scheduler)
    run_dir = make_run_dir(data.train_output_dir, config, is_main)  # all inputs loaded
    loss_log = start_loss_log(run_dir, history, is_main)
    unet, optimizer, unwrapped = prepare_for_training(accelerator, unet, optimizer, state)
    trainer.partially_frozen = len(params) < len(list(unwrapped.parameters()))
    if is_main:
        logger.info("%d clips, %d process(es), batch %d per process; %d trainable tensors (%.3f M parameters); "
                    "steps %d -> %d", len(dataset), world, data.batch_size, len(trainable),
                    sum(p.numel() for p in params) / 1e6, resume_step, max_steps)

    global_step = resume_step
    meter = LossMeter(accelerator, data.batch_size * world, ("total", *LOSS_NAMES))
    progress = tqdm(total=max_steps, initial=global_step, desc="Steps", disable=not is_main)
    unet.train()
    for epoch, batch in training_batches(loader, sampler, dataset, global_step, max_steps):
        batch = to_device(batch, device)
        losses = trainer.losses(unet, batch, step_generator(run.seed, rank, global_step))
        optimizer.zero_grad()
        accelerator.backward(losses["total"])
        accelerator.clip_grad_norm_(params, settings.optimizer.max_grad_norm)
        optimizer.step()
        lr_scheduler.step()
        global_step += 1
        progress.update(1)
        meter.add(global_step, losses)
        saving = global_step % ckpt.save_ckpt_steps == 0 or global_step == max_steps
        if saving or global_step % run.log_every_steps == 0:
            rows = meter.flush()  # the only host sync of the losses; every rank takes part
            history += rows
            progress.set_postfix(step_loss=f"{rows[-1]['total']:.4f}", epoch=epoch)
            if is_main:
                append_loss_log(loss_log, rows)
                logger.info("step %d: %s; %.2f s/step, %.1f samples/s", global_step,
                            ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items() if k != "step"),
                            meter.seconds_per_step, meter.samples_per_second)
        facts = checkpoint_facts(accelerator, unwrapped) if saving else None
        if facts is not None:
            save_checkpoint(run_dir, unwrapped, optimizer, lr_scheduler, accelerator.scaler, trainable, global_step,
                            settings, **facts)
            write_chart(run_dir, history, global_step)
        if is_main and global_step % run.validation_steps == 0:
            run_validation(settings, unwrapped, trainer.vae, run_dir, global_step, device, weight_dtype)
    del unet, optimizer  # the DDP wrapper goes before the process group (finish_training)
    finish_training(accelerator, progress)
    return run_dir
