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
(optimizer, LR scheduler, grad scaler) so that `ckpt.resume_ckpt_path=.../checkpoint-N.pt` continues exactly.
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
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from latentsync.config import CONFIG_DIR, load_config
from latentsync.data.syncnet_dataset import syncnet_visual_input
from latentsync.data.unet_dataset import UNetDataset, whisper_checkpoint_path
from latentsync.models.sync_loss import sync_loss
from latentsync.utils.diffusion_steps import (
    decode_latents,
    encode_latents,
    mask_to_latent,
    one_step_sampling,
    training_noise,
)
from latentsync.utils.training_utils import (
    EpochShardSampler,
    atomic_save,
    check_ranks_in_sync,
    data_position,
    finish_training,
    finite_or_raise,
    load_training_state,
    make_accelerator,
    make_loader,
    make_run_dir,
    plot_chart,
    save_training_state,
    step_generator,
    to_device,
    training_cli,
)

logger = logging.getLogger("train_unet")

LOSS_NAMES = ("recon", "sync", "lpips", "trepa")
LOSS_WEIGHT_KEYS = {"recon": "recon_loss_weight", "sync": "sync_loss_weight", "lpips": "perceptual_loss_weight",
                    "trepa": "trepa_loss_weight"}


# ---------------------------------------------------------------------------------------------- models


def load_vae(config, device, dtype):
    from diffusers import AutoencoderKL

    path = Path(config.ckpt.vae_path)
    if not path.exists():
        raise FileNotFoundError(f"VAE not found: {path} (set ckpt.vae_path; the official one is "
                                "checkpoints/sd-vae-ft-mse, tools/make_tiny_checkpoints.py writes a tiny one)")
    vae = AutoencoderKL.from_pretrained(str(path), torch_dtype=dtype).requires_grad_(False).to(device)
    if config.run.pixel_space_supervise:
        vae.enable_gradient_checkpointing()  # the decode of the predicted latents is differentiated
    return vae


def load_frozen_syncnet(config, device, dtype):
    """The SyncNet that scores generated mouths, or None when the sync loss is off."""
    if not (config.model.add_audio_layer and config.run.use_syncnet):
        return None, None
    from latentsync.models.stable_syncnet import StableSyncNet

    syncnet_config = load_config(config.data.syncnet_config_path)
    path = config.ckpt.syncnet_ckpt_path or syncnet_config.ckpt.inference_ckpt_path
    if not path:
        raise ValueError(f"SyncNet checkpoint is not set: give ckpt.syncnet_ckpt_path=PATH or ckpt.inference_ckpt_path "
                         f"in {config.data.syncnet_config_path} (or run.use_syncnet=false)")
    syncnet = StableSyncNet.from_pretrained(OmegaConf.to_container(syncnet_config.model, resolve=True), path,
                                            gradient_checkpointing=True)
    return syncnet.requires_grad_(False).to(device=device, dtype=dtype).eval(), syncnet_config


def load_perceptual_losses(config, device):
    """(lpips, trepa) modules, each None when its weight is 0 or pixel-space supervision is off."""
    lpips = trepa = None
    if not config.run.pixel_space_supervise:
        return None, None
    if config.run.perceptual_loss_weight != 0:
        from latentsync.models.lpips import LPIPS

        lpips = LPIPS(require_pretrained=bool(config.ckpt.lpips_require_pretrained)).to(device)
    if config.run.trepa_loss_weight != 0:
        from latentsync.trepa.loss import TREPALoss
        from latentsync.trepa.videomae import VideoMAEConfig, load_videomae

        trepa_cfg = load_config(config.ckpt.trepa_config_path)
        model = None
        if not trepa_cfg.loss.checkpoint:  # a checkpoint-free (tiny) config: random extractor, for demos/tests
            logger.warning("TREPA config %s names no checkpoint: random VideoMAE, TREPA is not meaningful",
                           config.ckpt.trepa_config_path)
            model = load_videomae(None, VideoMAEConfig.from_dict(trepa_cfg.model), with_cp=True)
        trepa = TREPALoss(device=device, with_cp=True, model=model, config_path=config.ckpt.trepa_config_path)
    return lpips, trepa


def select_trainable(unet, config) -> list[str]:
    """Official rule: with motion modules only names containing a `run.trainable_modules` entry train."""
    if config.model.use_motion_module:
        patterns = list(config.run.get("trainable_modules", []))
        unet.requires_grad_(False)
        for name, param in unet.named_parameters():
            if any(p in name for p in patterns):
                param.requires_grad_(True)
    else:
        unet.requires_grad_(True)
    names = [n for n, p in unet.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError(f"no U-Net parameter matches run.trainable_modules={list(config.run.trainable_modules)}")
    return names


# ---------------------------------------------------------------------------------------------- one step


class UNetTrainer:
    """Holds the frozen parts and computes the weighted loss of one batch."""

    def __init__(self, config, accelerator, vae, scheduler, syncnet, syncnet_config, lpips, trepa):
        self.config, self.accelerator = config, accelerator
        self.vae, self.scheduler = vae, scheduler
        self.syncnet, self.syncnet_config = syncnet, syncnet_config
        self.lpips, self.trepa = lpips, trepa
        self.scaling = float(config.run.vae_scaling_factor)
        self.shift = float(config.run.vae_shift_factor)
        self.weights = {name: float(config.run[key]) for name, key in LOSS_WEIGHT_KEYS.items()}
        self.partially_frozen = False

    def latents(self, batch: dict, generator) -> tuple[torch.Tensor, ...]:
        def encode(key: str) -> torch.Tensor:
            return encode_latents(self.vae, batch[key], generator, self.scaling, self.shift).float()

        gt, masked, ref = encode("gt_pixel_values"), encode("masked_pixel_values"), encode("ref_pixel_values")
        return gt, masked, ref, mask_to_latent(batch["masks"], gt.shape[-2:])

    def losses(self, unet, batch: dict, generator) -> dict[str, torch.Tensor]:
        cfg = self.config
        device = self.accelerator.device
        gt, masked, ref, masks = self.latents(batch, generator)
        noise = training_noise(gt.shape, generator, device, bool(cfg.run.use_mixed_noise),
                               float(cfg.run.mixed_noise_alpha))
        timesteps = torch.randint(0, self.scheduler.config.num_train_timesteps, (gt.shape[0],),
                                  generator=generator).to(device)
        noisy = self.scheduler.add_noise(gt, noise, timesteps)
        audio = batch.get("audio_embeds") if cfg.model.add_audio_layer else None
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
        needs_pixels = cfg.run.pixel_space_supervise and any(
            m is not None for m in (self.lpips, self.trepa, self.syncnet))
        needs_latents = self.syncnet is not None and not cfg.run.pixel_space_supervise
        if needs_pixels or needs_latents:
            pred_latents = one_step_sampling(self.scheduler, pred_noise.float(), timesteps, noisy)
        if needs_pixels:
            pixels = decode_latents(self.vae, pred_latents, self.scaling, self.shift).float()
            gt_pixels = rearrange(batch["gt_pixel_values"], "b f c h w -> (b f) c h w").float()
            if self.lpips is not None:
                half = pixels.shape[2] // 2
                out["lpips"] = self.lpips(pixels[:, :, half:], gt_pixels[:, :, half:]).mean()
            if self.trepa is not None:
                video = "(b f) c h w -> b c f h w"
                out["trepa"] = self.trepa(rearrange(pixels, video, f=gt.shape[2]),
                                          rearrange(gt_pixels, video, f=gt.shape[2]))
        if self.syncnet is not None:
            out["sync"] = self.sync_loss(pixels if cfg.run.pixel_space_supervise else pred_latents, batch["mel"],
                                         gt.shape[2])
        out["total"] = sum(self.weights[name] * out[name] for name in LOSS_NAMES)
        return out

    def sync_loss(self, generated: torch.Tensor, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Frozen-SyncNet BCE towards "in sync" for decoded pixels ((b f) c h w) or latents (b c f h w)."""
        sync_cfg = self.syncnet_config.data
        if generated.ndim == 4:
            size = int(sync_cfg.resolution)
            if generated.shape[-1] != size:
                generated = F.interpolate(generated, size=(size, size), mode="bicubic")
            frames = rearrange(generated, "(b f) c h w -> b f c h w", f=num_frames)
        else:
            frames = rearrange(generated, "b c f h w -> b f c h w")
        dtype = next(self.syncnet.parameters()).dtype
        vision, audio = self.syncnet(syncnet_visual_input(frames, bool(sync_cfg.lower_half)).to(dtype), mel.to(dtype))
        return sync_loss(vision, audio)


# ---------------------------------------------------------------------------------------------- validation


def run_validation(config, unet, vae, run_dir: Path, step: int, device, dtype) -> Path | None:
    """Lip-sync the validation clip with the current weights; any failure is logged, training goes on."""
    video, audio = Path(config.data.val_video_path), Path(config.data.val_audio_path)
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
        vae.config.scaling_factor = float(config.run.vae_scaling_factor)
        encoder = Audio2Feature(whisper_checkpoint_path(config), device=device, num_frames=int(config.data.num_frames),
                                audio_feat_length=list(config.data.audio_feat_length))
        pipeline = LipsyncPipeline(vae=vae, audio_encoder=encoder, unet=unet,
                                   scheduler=DDIMScheduler.from_pretrained(str(CONFIG_DIR)))
        pipeline(str(video), str(audio), str(out), num_frames=int(config.data.num_frames),
                 num_inference_steps=int(config.run.inference_steps), guidance_scale=float(config.run.guidance_scale),
                 weight_dtype=dtype, width=int(config.data.resolution), height=int(config.data.resolution),
                 mask_image_path=config.data.mask_image_path or None,
                 generator=torch.Generator().manual_seed(int(config.run.seed)), progress=False)
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

    def flush(self, history: dict) -> dict[str, float]:
        """Append the pending steps to `history` (raising on a non-finite loss); returns the last step's losses."""
        values = self.accelerator.reduce(torch.stack(self.rows), "mean").tolist()
        elapsed = time.perf_counter() - self.started
        self.seconds_per_step = elapsed / len(self.steps)
        self.samples_per_second = self.samples_per_step / self.seconds_per_step
        for step, row in zip(self.steps, values, strict=True):
            finite_or_raise(row[0], step)
            history["step"].append(step)
            for key, value in zip(("total", *LOSS_NAMES), row, strict=True):
                history[key].append(value)
        self.steps, self.rows, self.started = [], [], time.perf_counter()
        return dict(zip(("total", *LOSS_NAMES), values[-1], strict=True))


def save_checkpoint(run_dir: Path, unet, optimizer, lr_scheduler, scaler, trainable, history, step, config,
                    **extra) -> Path:
    path = run_dir / "checkpoints" / f"checkpoint-{step}.pt"
    atomic_save({"global_step": step, "state_dict": unet.state_dict()}, path)
    if config.ckpt.save_training_state:
        save_training_state(path, optimizer, lr_scheduler, scaler, trainable_names=trainable, history=history,
                            **extra)
    logger.info("saved checkpoint %s", path)
    return path


def write_chart(run_dir: Path, history: dict, step: int) -> None:
    series = [("Total loss", history["step"], history["total"])]
    series += [(f"{name} loss", history["step"], history[name]) for name in LOSS_NAMES if any(history[name])]
    plot_chart(run_dir / "loss_charts" / f"loss_chart-{step}.png", *series, title="U-Net training loss")


def main(config) -> Path:
    """Train as configured; returns the run folder (checkpoints/, loss_charts/, val_videos/, config.yaml)."""
    from diffusers import DDIMScheduler
    from diffusers.optimization import get_scheduler

    from latentsync.models.registry import load_unet

    accelerator = make_accelerator(config.run.mixed_precision_training, 1,
                                   find_unused_parameters=bool(config.run.find_unused_parameters))
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    seed = int(config.run.seed)
    torch.manual_seed(seed + rank)  # official: seed + rank; every step also has its own generator
    weight_dtype = torch.float16 if accelerator.mixed_precision == "fp16" else torch.float32
    run_dir = make_run_dir(config.data.train_output_dir, config, accelerator.is_main_process)

    noise_scheduler = DDIMScheduler.from_pretrained(str(CONFIG_DIR))
    vae = load_vae(config, device, weight_dtype)
    unet, resume_step = load_unet(OmegaConf.to_container(config.model, resolve=True), config.ckpt.resume_ckpt_path,
                                  device="cpu")
    unet.to(device)  # before the optimizer exists, so resumed optimizer state lands on the same device
    syncnet, syncnet_config = load_frozen_syncnet(config, device, weight_dtype)
    lpips, trepa = load_perceptual_losses(config, device)
    trainable = select_trainable(unet, config)
    params = [p for p in unet.parameters() if p.requires_grad]
    lr = float(config.optimizer.lr) * (world if config.optimizer.scale_lr else 1)
    optimizer = torch.optim.AdamW(params, lr=lr)
    if config.run.enable_gradient_checkpointing:
        unet.enable_gradient_checkpointing()

    dataset = UNetDataset(config.data.train_data_dir, config)
    sampler = EpochShardSampler(len(dataset), world, rank, seed=seed)
    loader = make_loader(dataset, int(config.data.batch_size), sampler, int(config.data.num_workers))
    max_steps = int(config.run.max_train_steps)
    if max_steps == -1:
        if int(config.run.max_train_epochs) == -1:
            raise ValueError("set run.max_train_steps or run.max_train_epochs")
        max_steps = int(config.run.max_train_epochs) * len(loader)
    lr_scheduler = get_scheduler(config.optimizer.lr_scheduler, optimizer=optimizer,
                                 num_warmup_steps=int(config.optimizer.lr_warmup_steps), num_training_steps=max_steps)

    history = {key: [] for key in ("step", "total", *LOSS_NAMES)}
    state = load_training_state(config.ckpt.resume_ckpt_path, trainable) if config.ckpt.resume_ckpt_path else None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        lr_scheduler.load_state_dict(state["lr_scheduler"])
        history = {key: list(values) for key, values in state.get("history", history).items()}
    global_step = resume_step
    unet, optimizer = accelerator.prepare(unet, optimizer)
    if state is not None and accelerator.scaler is not None and "scaler" in state:
        accelerator.scaler.load_state_dict(state["scaler"])
    unwrapped = accelerator.unwrap_model(unet)
    trainer = UNetTrainer(config, accelerator, vae, noise_scheduler, syncnet, syncnet_config, lpips, trepa)
    trainer.partially_frozen = len(params) < len(list(unwrapped.parameters()))
    if accelerator.is_main_process:
        logger.info("%d clips, %d process(es), batch %d per process; %d trainable tensors (%.3f M parameters); "
                    "steps %d -> %d", len(dataset), world, int(config.data.batch_size), len(trainable),
                    sum(p.numel() for p in params) / 1e6, global_step, max_steps)

    meter = LossMeter(accelerator, int(config.data.batch_size) * world)
    progress = tqdm(total=max_steps, initial=global_step, desc="Steps", disable=not accelerator.is_main_process)
    epoch, skip = data_position(global_step, len(loader), 1)
    unet.train()
    while global_step < max_steps:
        sampler.set_epoch(epoch, skip * int(config.data.batch_size))
        dataset.set_epoch(epoch)
        for batch in loader:
            batch = to_device(batch, device)
            losses = trainer.losses(unet, batch, step_generator(seed, rank, global_step))
            optimizer.zero_grad()
            accelerator.backward(losses["total"])
            accelerator.clip_grad_norm_(params, float(config.optimizer.max_grad_norm))
            optimizer.step()
            lr_scheduler.step()
            global_step += 1
            progress.update(1)
            meter.add(global_step, losses)
            saving = global_step % int(config.ckpt.save_ckpt_steps) == 0 or global_step == max_steps
            if saving or global_step % int(config.run.log_every_steps) == 0:
                reduced = meter.flush(history)  # the only host sync of the losses; every rank takes part
                progress.set_postfix(step_loss=f"{reduced['total']:.4f}", epoch=epoch)
                if accelerator.is_main_process:
                    logger.info("step %d: %s; %.2f s/step, %.1f samples/s", global_step,
                                ", ".join(f"{k} {v:.4f}" for k, v in reduced.items()), meter.seconds_per_step,
                                meter.samples_per_second)
            if saving:
                spread = check_ranks_in_sync(accelerator, unwrapped)  # every process takes part
                if accelerator.is_main_process:
                    save_checkpoint(run_dir, unwrapped, optimizer, lr_scheduler, accelerator.scaler, trainable,
                                    history, global_step, config, num_processes=world, replica_spread=spread)
                    write_chart(run_dir, history, global_step)
            if accelerator.is_main_process and global_step % int(config.run.validation_steps) == 0:
                run_validation(config, unwrapped, vae, run_dir, global_step, device, weight_dtype)
            if global_step >= max_steps:
                break
        epoch, skip = epoch + 1, 0
    finish_training(accelerator, progress)
    return run_dir


def run(argv=None) -> int:
    """Console-script entry: parse `--unet_config_path ... [key=value ...]`, train, exit 0."""
    return training_cli(main, "Train the LatentSync U-Net.", "--unet_config_path", "configs/unet/stage2.yaml",
                        "data.batch_size=2 ckpt.vae_path=PATH", argv)


if __name__ == "__main__":
    sys.exit(run())
