"""Train the LatentSync U-Net (stage 1, stage 2, stage2_efficient, 256 or 512 px configs).

    python -m scripts.train_unet --unet_config_path configs/unet/stage1.yaml [key=value ...]
    latentsync-train-unet --unet_config_path configs/unet/stage1.yaml [key=value ...]   # installed copy
    accelerate launch --num_processes 8 -m scripts.train_unet --unet_config_path configs/unet/stage2.yaml
    accelerate launch --multi_gpu --num_machines 2 --machine_rank 0 --main_process_ip HOST ... -m scripts.train_unet ...

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
it continues). The config is checked once into `latentsync.training_settings.UNetTrainingSettings`.
Every `run.validation_steps`: the inference pipeline lip-syncs data.val_video_path to data.val_audio_path into
<run>/val_videos/ (skipped with a log line if the pipeline or the files are unavailable). Loss charts go to
<run>/loss_charts/. Paths of the VAE, Whisper and SyncNet weights: ckpt.vae_path, ckpt.whisper_path,
ckpt.syncnet_ckpt_path (defaults in configs/training/defaults.yaml).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from omegaconf import DictConfig
from tqdm.auto import tqdm

from latentsync.config import CONFIG_DIR, load_config, vae_frames_per_call
from latentsync.data.syncnet_dataset import syncnet_visual_input
from latentsync.data.unet_dataset import UNetDataset
from latentsync.models.sync_loss import sync_loss
from latentsync.pipelines.conditioning import decode_latents, encode_latents, mask_to_latent
from latentsync.training_settings import SyncNetTrainingSettings, UNetTrainingSettings
from latentsync.utils.diffusion_steps import one_step_sampling, training_noise
from latentsync.utils.training_utils import (
    EpochShardSampler,
    append_loss_log,
    atomic_save,
    check_run_paths,
    checkpoint_facts,
    finish_training,
    finite_or_raise,
    load_training_state,
    loss_log_path,
    make_accelerator,
    make_loader,
    make_run_dir,
    plot_chart,
    read_loss_log,
    save_training_state,
    step_generator,
    to_device,
    training_batches,
    training_cli,
)

logger = logging.getLogger("train_unet")

LOSS_NAMES = ("recon", "sync", "lpips", "trepa")


# ---------------------------------------------------------------------------------------------- models


def load_vae(settings: UNetTrainingSettings, device, dtype):
    from diffusers import AutoencoderKL

    path = Path(settings.ckpt.vae_path)
    if not path.exists():
        raise FileNotFoundError(f"VAE not found: {path} (set ckpt.vae_path; the official one is "
                                "checkpoints/sd-vae-ft-mse, tools/make_tiny_checkpoints.py writes a tiny one)")
    vae = AutoencoderKL.from_pretrained(str(path), torch_dtype=dtype).requires_grad_(False).to(device)
    if settings.run.pixel_space_supervise:
        vae.enable_gradient_checkpointing()  # the decode of the predicted latents is differentiated
    return vae


def load_frozen_syncnet(settings: UNetTrainingSettings, device, dtype):
    """The SyncNet that scores generated mouths and its settings, or (None, None) when the sync loss is off."""
    if not settings.sync_loss:
        return None, None
    from latentsync.models.stable_syncnet import StableSyncNet

    syncnet_settings = SyncNetTrainingSettings.load(settings.data.syncnet_config_path)
    path = settings.ckpt.syncnet_ckpt_path or syncnet_settings.ckpt.inference_ckpt_path
    if not path:
        raise ValueError(f"SyncNet checkpoint is not set: give ckpt.syncnet_ckpt_path=PATH or ckpt.inference_ckpt_path "
                         f"in {settings.data.syncnet_config_path} (or run.use_syncnet=false)")
    syncnet = StableSyncNet.from_pretrained(syncnet_settings.model, path, gradient_checkpointing=True)
    return syncnet.requires_grad_(False).to(device=device, dtype=dtype).eval(), syncnet_settings


def load_perceptual_losses(settings: UNetTrainingSettings, device):
    """(lpips, trepa) modules, each None when its weight is 0 or pixel-space supervision is off."""
    lpips = trepa = None
    if not settings.run.pixel_space_supervise:
        return None, None
    if settings.run.perceptual_loss_weight != 0:
        from latentsync.models.lpips import LPIPS

        lpips = LPIPS(require_pretrained=settings.ckpt.lpips_require_pretrained).to(device)
    if settings.run.trepa_loss_weight != 0:
        from latentsync.trepa.loss import TREPALoss
        from latentsync.trepa.videomae import VideoMAEConfig, load_videomae

        trepa_path = settings.ckpt.trepa_config_path
        trepa_cfg = load_config(trepa_path)
        model = None
        if not trepa_cfg.loss.checkpoint:  # a checkpoint-free (tiny) config: random extractor, for demos/tests
            logger.warning("TREPA config %s names no checkpoint: random VideoMAE, TREPA is not meaningful",
                           trepa_path)
            model = load_videomae(None, VideoMAEConfig.from_dict(trepa_cfg.model), with_cp=True)
        trepa = TREPALoss(device=device, with_cp=True, model=model, config_path=trepa_path)
    return lpips, trepa


def select_trainable(unet, settings: UNetTrainingSettings) -> list[str]:
    """Official rule: with motion modules only names containing a `run.trainable_modules` entry train."""
    patterns = settings.run.trainable_modules
    if settings.model["use_motion_module"]:
        unet.requires_grad_(False)
        for name, param in unet.named_parameters():
            if any(p in name for p in patterns):
                param.requires_grad_(True)
    else:
        unet.requires_grad_(True)
    names = [n for n, p in unet.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError(f"no U-Net parameter matches run.trainable_modules={list(patterns)}")
    return names


# ---------------------------------------------------------------------------------------------- one step


class UNetTrainer:
    """Holds the frozen parts and computes the weighted loss of one batch."""

    def __init__(self, settings: UNetTrainingSettings, accelerator, vae, scheduler, syncnet,
                 syncnet_settings: SyncNetTrainingSettings | None, lpips, trepa):
        self.run, self.accelerator = settings.run, accelerator
        self.audio_layers = settings.audio_layers
        self.vae, self.scheduler = vae, scheduler
        self.syncnet, self.syncnet_data = syncnet, syncnet_settings.data if syncnet_settings else None
        self.lpips, self.trepa = lpips, trepa
        self.scaling, self.shift = self.run.vae_scaling_factor, self.run.vae_shift_factor
        self.weights = {"recon": self.run.recon_loss_weight, "sync": self.run.sync_loss_weight,
                        "lpips": self.run.perceptual_loss_weight, "trepa": self.run.trepa_loss_weight}
        self.partially_frozen = False

    def latents(self, batch: dict, generator) -> tuple[torch.Tensor, ...]:
        def encode(key: str) -> torch.Tensor:
            return encode_latents(self.vae, batch[key], generator, self.scaling, self.shift,
                                  frames_per_call=vae_frames_per_call()).float()

        gt, masked, ref = encode("gt_pixel_values"), encode("masked_pixel_values"), encode("ref_pixel_values")
        return gt, masked, ref, mask_to_latent(batch["masks"], gt.shape[-2:])

    def losses(self, unet, batch: dict, generator) -> dict[str, torch.Tensor]:
        run = self.run
        device = self.accelerator.device
        gt, masked, ref, masks = self.latents(batch, generator)
        noise = training_noise(gt.shape, generator, device, run.use_mixed_noise, run.mixed_noise_alpha)
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (gt.shape[0],),
                                  generator=generator).to(device)
        noisy = self.scheduler.add_noise(gt, noise, timesteps)
        audio = batch.get("audio_embeds") if self.audio_layers else None
        unet_input = torch.cat([noisy, masks, masked, ref], dim=1)
        if self.partially_frozen:
            # torch 2.13 CPU segfaults in GroupNorm backward when a channels-last-3d input needs no grad but the
            # norm's weights do (frozen layers before trainable ones); an input that requires grad avoids it.
            unet_input.requires_grad_(True)
        with self.accelerator.autocast():
            pred_noise = unet(unet_input, timesteps, encoder_hidden_states=audio).sample
        zero = torch.zeros((), device=device)
        out = {name: zero for name in LOSS_NAMES}
        if self.weights["recon"] != 0:
            out["recon"] = F.mse_loss(pred_noise.float(), noise.float())
        needs_pixels = run.pixel_space_supervise and any(
            m is not None for m in (self.lpips, self.trepa, self.syncnet))
        needs_latents = self.syncnet is not None and not run.pixel_space_supervise
        if needs_pixels or needs_latents:
            pred_latents = one_step_sampling(self.scheduler, pred_noise.float(), timesteps, noisy)
        if needs_pixels:
            pixels = decode_latents(self.vae, pred_latents, self.scaling, self.shift,
                                    frames_per_call=vae_frames_per_call()).float()
            gt_pixels = rearrange(batch["gt_pixel_values"], "b f c h w -> (b f) c h w").float()
            if self.lpips is not None:
                half = pixels.shape[2] // 2
                out["lpips"] = self.lpips(pixels[:, :, half:], gt_pixels[:, :, half:]).mean()
            if self.trepa is not None:
                video = "(b f) c h w -> b c f h w"
                out["trepa"] = self.trepa(rearrange(pixels, video, f=gt.shape[2]),
                                          rearrange(gt_pixels, video, f=gt.shape[2]))
        if self.syncnet is not None:
            out["sync"] = self.sync_loss(pixels if run.pixel_space_supervise else pred_latents, batch["mel"],
                                         gt.shape[2])
        out["total"] = sum(self.weights[name] * out[name] for name in LOSS_NAMES)
        return out

    def sync_loss(self, generated: torch.Tensor, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Frozen-SyncNet BCE towards "in sync" for decoded pixels ((b f) c h w) or latents (b c f h w)."""
        if generated.ndim == 4:
            size = self.syncnet_data.resolution
            if generated.shape[-1] != size:
                generated = F.interpolate(generated, size=(size, size), mode="bicubic")
            frames = rearrange(generated, "(b f) c h w -> b f c h w", f=num_frames)
        else:
            frames = rearrange(generated, "b c f h w -> b f c h w")
        dtype = next(self.syncnet.parameters()).dtype
        vision, audio = self.syncnet(syncnet_visual_input(frames, self.syncnet_data.lower_half).to(dtype), mel.to(dtype))
        return sync_loss(vision, audio)


# ---------------------------------------------------------------------------------------------- validation


def run_validation(settings: UNetTrainingSettings, unet, vae, run_dir: Path, step: int, device, dtype) -> Path | None:
    """Lip-sync the validation clip with the current weights; any failure is logged, training goes on."""
    data, run = settings.data, settings.run
    video, audio = Path(data.val_video_path), Path(data.val_audio_path)
    if not video.is_file() or not audio.is_file():
        logger.info("validation skipped: %s or %s not found (set data.val_video_path / val_audio_path)", video, audio)
        return None
    try:
        from diffusers import DDIMScheduler

        from latentsync.pipelines.lipsync_pipeline import LipsyncPipeline
        from latentsync.whisper.audio2feature import Audio2Feature
    except ImportError as exc:
        logger.info("validation skipped: the inference pipeline is not available (%s)", exc)
        return None
    out = run_dir / "val_videos" / f"val_video_{step}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        vae.config.scaling_factor = run.vae_scaling_factor
        encoder = Audio2Feature(settings.whisper_path, device=device, num_frames=data.num_frames,
                                audio_feat_length=list(data.audio_feat_length))
        pipeline = LipsyncPipeline(vae=vae, audio_encoder=encoder, unet=unet,
                                   scheduler=DDIMScheduler.from_pretrained(str(CONFIG_DIR)))
        pipeline(str(video), str(audio), str(out), num_frames=data.num_frames, num_inference_steps=run.inference_steps,
                 guidance_scale=run.guidance_scale, weight_dtype=dtype, width=data.resolution, height=data.resolution,
                 mask_image_path=data.mask_image_path or None, generator=torch.Generator().manual_seed(run.seed),
                 progress=False)
    except Exception as exc:  # validation must never end a long training run
        logger.warning("validation at step %d failed: %s: %s", step, type(exc).__name__, exc)
        return None
    logger.info("validation video: %s", out)
    return out


# ---------------------------------------------------------------------------------------------- main


class LossMeter:
    """Keeps each step's losses on the device and syncs them with the host only when asked (at the logging
    interval and before a checkpoint): one reduce and one transfer per interval instead of one per loss and step.
    Also measures step time and throughput over the interval."""

    def __init__(self, accelerator, samples_per_step: int):
        self.accelerator, self.samples_per_step = accelerator, samples_per_step
        self.steps, self.rows = [], []
        self.started = time.perf_counter()
        self.seconds_per_step = self.samples_per_second = float("nan")

    def add(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        self.steps.append(step)
        self.rows.append(torch.stack([losses[k].detach().float() for k in ("total", *LOSS_NAMES)]))

    def flush(self) -> list[dict[str, float]]:
        """The pending steps' losses averaged over the processes, one {"step", "total", *LOSS_NAMES} row per step
        (raising on a non-finite loss)."""
        values = self.accelerator.reduce(torch.stack(self.rows), "mean").tolist()
        elapsed = time.perf_counter() - self.started
        self.seconds_per_step = elapsed / len(self.steps)
        self.samples_per_second = self.samples_per_step / self.seconds_per_step
        rows = []
        for step, row in zip(self.steps, values, strict=True):
            finite_or_raise(row[0], step)
            rows.append({"step": step, **dict(zip(("total", *LOSS_NAMES), row, strict=True))})
        self.steps, self.rows, self.started = [], [], time.perf_counter()
        return rows


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


def main(config: DictConfig) -> Path:
    """Train as configured (a config from `load_training_config`, checked once into UNetTrainingSettings);
    returns the run folder (checkpoints/ with the loss log, loss_charts/, val_videos/, config.yaml)."""
    from diffusers import DDIMScheduler
    from diffusers.optimization import get_scheduler

    from latentsync.models.registry import load_unet

    settings = UNetTrainingSettings.from_config(config)
    data, run, ckpt, opt = settings.data, settings.run, settings.ckpt, settings.optimizer
    accelerator = make_accelerator(run.mixed_precision_training, 1, find_unused_parameters=run.find_unused_parameters)
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    torch.manual_seed(run.seed + rank)  # official: seed + rank; every step also has its own generator
    weight_dtype = torch.float16 if accelerator.mixed_precision == "fp16" else torch.float32
    check_run_paths(data.train_output_dir, ckpt.resume_ckpt_path)

    noise_scheduler = DDIMScheduler.from_pretrained(str(CONFIG_DIR))
    vae = load_vae(settings, device, weight_dtype)
    unet, resume_step = load_unet(settings.model, ckpt.resume_ckpt_path, device="cpu")
    unet.to(device)  # before the optimizer exists, so resumed optimizer state lands on the same device
    syncnet, syncnet_settings = load_frozen_syncnet(settings, device, weight_dtype)
    lpips, trepa = load_perceptual_losses(settings, device)
    trainable = select_trainable(unet, settings)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=opt.lr * (world if opt.scale_lr else 1))
    if run.enable_gradient_checkpointing:
        unet.enable_gradient_checkpointing()

    dataset = UNetDataset(data.train_data_dir, settings)
    sampler = EpochShardSampler(len(dataset), world, rank, seed=run.seed)
    loader = make_loader(dataset, data.batch_size, sampler, data.num_workers)
    max_steps = run.max_train_steps if run.max_train_steps != -1 else run.max_train_epochs * len(loader)
    lr_scheduler = get_scheduler(opt.lr_scheduler, optimizer=optimizer, num_warmup_steps=opt.lr_warmup_steps,
                                 num_training_steps=max_steps)

    history = []  # this run's loss log, in memory for the charts
    state = load_training_state(ckpt.resume_ckpt_path, trainable) if ckpt.resume_ckpt_path else None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        history = read_loss_log(loss_log_path(Path(ckpt.resume_ckpt_path).parent), up_to_step=resume_step)
    run_dir = make_run_dir(data.train_output_dir, config, accelerator.is_main_process)  # all inputs loaded
    loss_log = loss_log_path(run_dir / "checkpoints")
    if accelerator.is_main_process:
        append_loss_log(loss_log, history)  # the new run's log starts with the steps it continues
    global_step = resume_step
    unet, optimizer = accelerator.prepare(unet, optimizer)
    if state is not None and accelerator.scaler is not None and "scaler" in state:
        accelerator.scaler.load_state_dict(state["scaler"])
    unwrapped = accelerator.unwrap_model(unet)
    trainer = UNetTrainer(settings, accelerator, vae, noise_scheduler, syncnet, syncnet_settings, lpips, trepa)
    trainer.partially_frozen = len(params) < len(list(unwrapped.parameters()))
    if accelerator.is_main_process:
        logger.info("%d clips, %d process(es), batch %d per process; %d trainable tensors (%.3f M parameters); "
                    "steps %d -> %d", len(dataset), world, data.batch_size, len(trainable),
                    sum(p.numel() for p in params) / 1e6, global_step, max_steps)

    meter = LossMeter(accelerator, data.batch_size * world)
    progress = tqdm(total=max_steps, initial=global_step, desc="Steps", disable=not accelerator.is_main_process)
    unet.train()
    for epoch, batch in training_batches(loader, sampler, dataset, global_step, max_steps):
        batch = to_device(batch, device)
        losses = trainer.losses(unet, batch, step_generator(run.seed, rank, global_step))
        optimizer.zero_grad()
        accelerator.backward(losses["total"])
        accelerator.clip_grad_norm_(params, opt.max_grad_norm)
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
            if accelerator.is_main_process:
                append_loss_log(loss_log, rows)
                logger.info("step %d: %s; %.2f s/step, %.1f samples/s", global_step,
                            ", ".join(f"{k} {v:.4f}" for k, v in rows[-1].items() if k != "step"),
                            meter.seconds_per_step, meter.samples_per_second)
        facts = checkpoint_facts(accelerator, unwrapped) if saving else None
        if facts is not None:
            save_checkpoint(run_dir, unwrapped, optimizer, lr_scheduler, accelerator.scaler, trainable, global_step,
                            settings, **facts)
            write_chart(run_dir, history, global_step)
        if accelerator.is_main_process and global_step % run.validation_steps == 0:
            run_validation(settings, unwrapped, vae, run_dir, global_step, device, weight_dtype)
    finish_training(accelerator, progress)
    return run_dir


def run(argv=None) -> int:
    """Console-script entry: parse `--unet_config_path ... [key=value ...]`, train, exit 0."""
    return training_cli(main, "Train the LatentSync U-Net.", "--unet_config_path", "configs/unet/stage2.yaml",
                        "data.batch_size=2 ckpt.vae_path=PATH", argv)


if __name__ == "__main__":
    sys.exit(run())
