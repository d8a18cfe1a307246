"""Train StableSyncNet, the audio/visual sync discriminator that supervises the U-Net's lip sync.

The command line is latentsync/cli/train_syncnet.py.

Each step: in-sync / shifted pairs from `SyncNetDataset`, optional VAE encoding (`data.latent_space`), the
lower half of the face stacked over frames, BCE on the cosine similarity (`cosine_loss`), clipped AdamW
steps under fp16 autocast when `run.mixed_precision_training` and CUDA. Every `run.validation_steps`: the
validation loss and accuracy (cosine > 0.5 counts as "in sync"), charted to <run>/loss_charts/*.png. Every
`ckpt.save_ckpt_steps`: <run>/checkpoints/checkpoint-N.pt in the official format (loadable by
StableSyncNet) and checkpoint-N.state.pt (optimizer) for `ckpt.resume_ckpt_path=...` resumption.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from latentsync.data.syncnet_dataset import FrameEncoder, SyncNetDataset
from latentsync.models.stable_syncnet import StableSyncNet
from latentsync.models.sync_loss import cosine_loss, sync_predictions
from latentsync.training.data_order import EpochShardSampler, make_loader, training_batches
from latentsync.training.logs import finite_or_raise, plot_chart
from latentsync.training.loop import finish_training, make_run_dir, prepare_for_training, start_process, to_device
from latentsync.training.ranks import checkpoint_facts
from latentsync.training.settings import SyncNetTrainingSettings
from latentsync.training.state import atomic_save, load_training_state, save_training_state
from latentsync.utils.seeding import step_generator

logger = logging.getLogger("train_syncnet")

HISTORY_KEYS = ("train_step_list", "train_loss_list", "val_step_list", "val_loss_list", "val_acc_list")


def syncnet_batch_loss(model, encoder: FrameEncoder, batch: dict, generator, accelerator, threshold: float):
    """(mean BCE loss, number of correct in-sync decisions) for one batch."""
    frames = encoder(batch["frames"], generator)
    with accelerator.autocast():
        vision_embeds, audio_embeds = model(frames, batch["audio_samples"])
    y = batch["y"].float()
    loss = cosine_loss(vision_embeds.float(), audio_embeds.float(), y).mean()
    predictions = sync_predictions(vision_embeds.float(), audio_embeds.float(), threshold)
    return loss, (predictions == y.reshape(-1)).sum().item()


@torch.no_grad()
def validate(model, encoder, dataset, settings: SyncNetTrainingSettings, accelerator) -> tuple[float, float]:
    """Mean loss and accuracy over `data.num_val_samples` validation pairs (fixed windows, main process)."""
    data, run = settings.data, settings.run
    was_training = model.training
    model.eval()
    total = data.num_val_samples
    batch_size = max(1, min(run.validation_max_frames // data.num_frames, data.batch_size))
    losses, correct, seen = [], 0, 0
    generator = step_generator(run.seed, 0, -1)  # same VAE noise at every validation
    for begin in range(0, total, batch_size):
        indices = range(begin, min(total, begin + batch_size))
        items = [dataset.sample(i % len(dataset), i // len(dataset)) for i in indices]
        batch = to_device(torch.utils.data.default_collate(items), accelerator.device)
        loss, right = syncnet_batch_loss(model, encoder, batch, generator, accelerator, run.syncnet_val_threshold)
        losses.append(loss.item() * len(items))
        correct += right
        seen += len(items)
    if was_training:
        model.train()
    return sum(losses) / seen, correct / seen


def save_checkpoint(run_dir: Path, model, optimizer, scaler, history: dict, step: int,
                    settings: SyncNetTrainingSettings, **facts) -> Path:
    path = run_dir / "checkpoints" / f"checkpoint-{step}.pt"
    atomic_save({"state_dict": model.state_dict(), "global_step": step, **history}, path)
    if settings.ckpt.save_training_state:
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        save_training_state(path, optimizer, scaler=scaler, trainable_names=names, **facts)
    logger.info("saved checkpoint %s", path)
    return path


def write_charts(run_dir: Path, history: dict, step: int) -> None:
    charts = run_dir / "loss_charts"
    plot_chart(charts / f"loss_chart-{step}.png",
               ("Train loss", history["train_step_list"], history["train_loss_list"]),
               ("Val loss", history["val_step_list"], history["val_loss_list"]), title="SyncNet loss")
    plot_chart(charts / f"accuracy_chart-{step}.png", ("Val accuracy", history["val_step_list"],
               history["val_acc_list"]), ylabel="Accuracy", title="SyncNet validation accuracy")


def resume_syncnet(model, optimizer, checkpoint: str) -> tuple[int, dict, dict | None]:
    """(step, history, sidecar state) of the checkpoint resumed, with the weights and the optimizer restored;
    (0, empty history, None) for a fresh start."""
    global_step, history, resume_state = 0, {key: [] for key in HISTORY_KEYS}, None
    if not checkpoint:
        return global_step, history, resume_state
    extras = model.load_checkpoint(checkpoint)
    global_step = int(extras.get("global_step", 0))
    history.update({key: list(extras.get(key, [])) for key in HISTORY_KEYS})
    resume_state = load_training_state(checkpoint, [n for n, p in model.named_parameters() if p.requires_grad])
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])
    logger.info("resumed from %s at step %d", checkpoint, global_step)
    return global_step, history, resume_state


def main(config: DictConfig) -> Path:
    """Train as configured (a config from `load_training_config`, checked once into SyncNetTrainingSettings);
    returns the run folder (checkpoints/, loss_charts/, config.yaml)."""
    settings = SyncNetTrainingSettings.from_config(config)
    data, run, ckpt = settings.data, settings.run, settings.ckpt
    accelerator = start_process(run.mixed_precision_training, run.seed, data.train_output_dir, ckpt.resume_ckpt_path,
                                gradient_accumulation_steps=data.gradient_accumulation_steps)
    rank, world = accelerator.process_index, accelerator.num_processes

    train_set = SyncNetDataset(data.train_data_dir, data.train_fileslist, settings)
    val_set = SyncNetDataset(data.val_data_dir, data.val_fileslist, settings)
    sampler = EpochShardSampler(len(train_set), world, rank, seed=run.seed)
    loader = make_loader(train_set, data.batch_size, sampler, data.num_workers)
    encoder = FrameEncoder(settings, accelerator.device)

    model = StableSyncNet(settings.model).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.optimizer.lr)
    global_step, history, resume_state = resume_syncnet(model, optimizer, ckpt.resume_ckpt_path)
    run_dir = make_run_dir(data.train_output_dir, config, accelerator.is_main_process)  # all inputs loaded
    model, optimizer, unwrapped = prepare_for_training(accelerator, model, optimizer, resume_state)
    accumulation = data.gradient_accumulation_steps
    max_steps = run.max_train_steps
    if accelerator.is_main_process:
        logger.info("%d training clips, %d validation clips, %d process(es), batch %d per process, %d steps",
                    len(train_set), len(val_set), world, data.batch_size, max_steps)

    progress = tqdm(total=max_steps, initial=global_step, desc="Steps", disable=not accelerator.is_main_process)
    batches_done = global_step * accumulation  # micro-batches so far: seeds each one's random draws
    step_loss = 0.0
    for epoch, batch in training_batches(loader, sampler, train_set, global_step, max_steps, accumulation):
        batch = to_device(batch, accelerator.device)
        generator = step_generator(run.seed, rank, batches_done)
        batches_done += 1
        with accelerator.accumulate(model):
            loss, _ = syncnet_batch_loss(model, encoder, batch, generator, accelerator, run.syncnet_val_threshold)
            accelerator.backward(loss)  # accelerate divides by the accumulation count
            step_loss += accelerator.reduce(loss.detach(), "mean").item() / accumulation
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), settings.optimizer.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
        if not accelerator.sync_gradients:
            continue
        global_step += 1
        progress.update(1)
        history["train_step_list"].append(global_step)
        history["train_loss_list"].append(finite_or_raise(step_loss, global_step))
        progress.set_postfix(step_loss=f"{step_loss:.4f}", epoch=epoch)
        step_loss = 0.0
        if accelerator.is_main_process and global_step % run.validation_steps == 0:
            val_loss, val_acc = validate(unwrapped, encoder, val_set, settings, accelerator)
            history["val_step_list"].append(global_step)
            history["val_loss_list"].append(val_loss)
            history["val_acc_list"].append(val_acc)
            logger.info("step %d: val loss %.4f, val accuracy %.3f", global_step, val_loss, val_acc)
            write_charts(run_dir, history, global_step)
        saving = global_step % ckpt.save_ckpt_steps == 0 or global_step == max_steps
        facts = checkpoint_facts(accelerator, unwrapped) if saving else None
        if facts is not None:
            save_checkpoint(run_dir, unwrapped, optimizer, accelerator.scaler, history, global_step, settings, **facts)
    del model, optimizer  # the DDP wrapper goes before the process group (finish_training)
    finish_training(accelerator, progress)
    return run_dir

