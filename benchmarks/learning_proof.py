"""Learning proof on the synthetic dataset: a small SyncNet learns audio-visual sync, and a tiny U-Net trained
briefly with it generates mouths that follow the audio better than shuffled-audio controls.

    python -m benchmarks.learning_proof --work output/learning_proof            # ~30 CPU minutes on 2 cores
    python -m benchmarks.learning_proof --work output/lp --syncnet_steps 300 --stage1_steps 200 --stage2_steps 100
    python -m benchmarks.learning_proof --work output/learning_proof --guard   # presets vs 20-step fp32 DDIM
    python -m benchmarks.learning_proof --work output/learning_proof --guard --candidate inference_steps=4
    python -m benchmarks.learning_proof --work output/learning_proof --reuse_trained  # finish an interrupted run

Steps (all with the project's own tools, nothing downloaded):
1. synthetic clips (tools/make_synthetic_dataset.py): 64 px aligned faces whose mouth follows generated syllables,
   with a held-out validation split;
2. tiny VAE / Whisper / U-Net checkpoints (tools/make_tiny_checkpoints.py), the VAE fitted to the training frames;
3. SyncNet (configs/syncnet/small_64.yaml) trained with latentsync/training/syncnet_trainer.py, validation accuracy
   charted;
4. U-Net (configs/unet/tiny.yaml): stage 1 (noise MSE, all parameters), then stage 2 from that checkpoint
   (motion modules + attentions, adds the trained SyncNet's sync loss), both with latentsync/training/unet_trainer.py;
5. evaluation on held-out clips: the mouth region of a 16-frame window is regenerated (DDIM) from the masked
   frames, a non-overlapping reference window and either the clip's own audio or another clip's audio
   (shuffled control); the trained SyncNet then scores every generated window against the clip's real audio.
Results: <work>/results.json and a chart; `--docs` also copies the chart to docs/training_learning_proof.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from latentsync.config import REPO_ROOT, load_config
from latentsync.training.logs import loss_log_path, read_loss_log
from latentsync.training.settings import load_training_config

logger = logging.getLogger("learning_proof")

SYNCNET_CONFIG = "configs/syncnet/small_64.yaml"
UNET_CONFIG = "configs/unet/tiny.yaml"
GUARD_SYNC_RATIO = 0.9  # issue 13: a preset keeps >= 0.9x the own-audio sync of 20-step fp32 DDIM ...
GUARD_MIN_WINS = 26  # ... and own audio beats shuffled audio on >= 26 of the 32 held-out clips
STAGE1_OVERRIDES = ("model.use_motion_module=false", "run.pixel_space_supervise=false", "run.use_syncnet=false")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (DataLoader workers), all threads."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def newest_checkpoint(run_dir: Path) -> Path:
    ckpts = sorted((run_dir / "checkpoints").glob("checkpoint-*[0-9].pt"), key=lambda p: int(p.stem.split("-")[1]))
    return ckpts[-1]


# ---------------------------------------------------------------------------------------------- stages


def make_data(args) -> Path:
    from latentsync.data.synthetic import make_dataset, synthetic_config

    data = Path(args.data)
    if (data / "manifest.json").is_file():
        logger.info("using the existing synthetic dataset %s", data)
        return data
    cfg = synthetic_config([f"num_train={args.num_train}", f"num_val={args.num_val}"])
    make_dataset(data, cfg)
    return data


def finished_run(folder: Path, steps: int) -> Path | None:
    """The newest run under `folder` that saved a checkpoint of `steps` (for `--reuse_trained`), or None."""
    runs = sorted(folder.glob("train-*/checkpoints/checkpoint-*[0-9].pt"), key=lambda p: p.stat().st_mtime)
    return next((ckpt.parent.parent for ckpt in reversed(runs) if ckpt.stem == f"checkpoint-{steps}"), None)


def make_checkpoints(args, data: Path) -> dict:
    from tools.make_tiny_checkpoints import fit_vae, make_tiny_checkpoints

    if args.reuse_trained and (args.work / "ckpts" / "vae").is_dir():
        logger.info("reusing the fitted VAE and tiny checkpoints in %s", args.work / "ckpts")
        ckpts = args.work / "ckpts"
        return {"vae": str(ckpts / "vae"), "whisper": str(ckpts / "whisper_tiny.pt"),
                "unet": str(ckpts / "unet_tiny.pt"), "syncnet": str(ckpts / "syncnet_tiny.pt"), "vae_final_loss": None}
    paths = make_tiny_checkpoints(args.work / "ckpts", seed=0)
    losses = fit_vae(paths["vae"], data / "train", args.vae_steps, batch_size=args.vae_batch)
    return {**paths, "vae_final_loss": float(np.mean(losses[-20:]))}


def train_syncnet(args, data: Path) -> tuple[Path, dict]:
    from latentsync.training import syncnet_trainer

    config = load_training_config(SYNCNET_CONFIG, [
        f"data.train_data_dir={data / 'train'}", f"data.val_data_dir={data / 'val'}",
        f"data.train_output_dir={args.work / 'syncnet'}", f"data.audio_mel_cache_dir={args.work / 'cache' / 'mel'}",
        f"run.max_train_steps={args.syncnet_steps}", f"ckpt.save_ckpt_steps={args.syncnet_steps}",
        f"data.batch_size={args.syncnet_batch}", f"run.validation_steps={args.syncnet_val_every}",
        f"data.num_val_samples={args.syncnet_val_samples}",
    ])
    start, cpu_start = time.time(), cpu_seconds()
    run = finished_run(args.work / "syncnet", args.syncnet_steps) if args.reuse_trained else None
    run = run or syncnet_trainer.main(config)
    ckpt = newest_checkpoint(run)
    history = torch.load(ckpt, weights_only=True)
    info = {"minutes": (time.time() - start) / 60, "cpu_minutes": (cpu_seconds() - cpu_start) / 60,
            "checkpoint": str(ckpt), "val_step": history["val_step_list"],
            "val_acc": history["val_acc_list"], "val_loss": history["val_loss_list"]}
    return ckpt, info


def unet_overrides(args, data: Path, ckpts: dict, out: str, steps: int) -> list[str]:
    return [
        f"data.train_data_dir={data / 'train'}", f"data.train_output_dir={args.work / out}",
        f"data.audio_mel_cache_dir={args.work / 'cache' / 'mel'}",
        f"data.audio_embeds_cache_dir={args.work / 'cache' / 'embeds'}",
        f"ckpt.vae_path={ckpts['vae']}", f"ckpt.whisper_path={ckpts['whisper']}",
        f"run.max_train_steps={steps}", f"ckpt.save_ckpt_steps={steps}", "run.validation_steps=1000000",
        f"data.batch_size={args.unet_batch}", f"optimizer.lr={args.unet_lr}", "data.num_workers=1",
    ]


def train_unet(args, data: Path, ckpts: dict, syncnet_ckpt: Path) -> tuple[Path, dict]:
    from latentsync.training import unet_trainer

    start = time.time()
    reuse = {name: finished_run(args.work / name, steps) if args.reuse_trained else None
             for name, steps in (("unet_stage1", args.stage1_steps),
                                 ("unet_stage2", args.stage1_steps + args.stage2_steps))}
    stage1 = reuse["unet_stage1"] or unet_trainer.main(load_training_config(UNET_CONFIG, [
        *unet_overrides(args, data, ckpts, "unet_stage1", args.stage1_steps), "ckpt.resume_ckpt_path=",
        *STAGE1_OVERRIDES]))
    stage1_ckpt = newest_checkpoint(stage1)
    stage1_minutes = (time.time() - start) / 60
    stage2 = reuse["unet_stage2"] or unet_trainer.main(load_training_config(UNET_CONFIG, [
        *unet_overrides(args, data, ckpts, "unet_stage2", args.stage1_steps + args.stage2_steps),
        f"ckpt.resume_ckpt_path={stage1_ckpt}", f"data.syncnet_config_path={SYNCNET_CONFIG}",
        f"ckpt.syncnet_ckpt_path={syncnet_ckpt}", "run.perceptual_loss_weight=0", "run.trepa_loss_weight=0",
        f"run.sync_loss_weight={args.sync_loss_weight}"]))
    stage2_ckpt = newest_checkpoint(stage2)
    sync = [row["sync"] for row in read_loss_log(loss_log_path(stage2_ckpt.parent))]
    return stage2_ckpt, {"stage1_minutes": stage1_minutes, "total_minutes": (time.time() - start) / 60,
                         "stage1_checkpoint": str(stage1_ckpt), "stage2_checkpoint": str(stage2_ckpt),
                         "stage2_sync_loss_first10": float(np.mean(sync[:10])),
                         "stage2_sync_loss_last10": float(np.mean(sync[-10:]))}


# ---------------------------------------------------------------------------------------------- evaluation


REFERENCE_SAMPLER = {"scheduler": "ddim", "inference_steps": 20, "guidance_scale": 1.5, "guidance_fraction": 1.0,
                     "enable_deepcache": False, "dtype": "fp32"}  # the quality guard's yardstick: plain 20-step fp32 DDIM


class Generator:
    """Regenerates the masked mouth region of 16-frame windows with the trained U-Net, through the inference
    sampler (`latentsync.pipelines.sampling.denoise`) with a given scheduler, steps, guidance (and its share of
    the steps), DeepCache (optionally with its own `cache_interval`), dtype."""

    def __init__(self, ckpts: dict, unet_ckpt: Path, sampler: dict, overrides=()):
        from diffusers import AutoencoderKL

        from latentsync.api import build_scheduler, resolve_dtype
        from latentsync.models.registry import load_unet

        cfg = load_config(UNET_CONFIG, overrides)
        self.sampler = dict(sampler)
        self.dtype = resolve_dtype(sampler["dtype"], torch.device("cpu"))
        unet, _ = load_unet(OmegaConf.to_container(cfg.model), str(unet_ckpt))
        self.unet = unet.eval().to(self.dtype)
        self.vae = AutoencoderKL.from_pretrained(ckpts["vae"]).eval().to(self.dtype)
        self.scheduler = build_scheduler(sampler["scheduler"])
        self.cache_interval = None
        if sampler["enable_deepcache"]:
            from types import SimpleNamespace

            from latentsync.pipelines.deepcache import enable_deepcache, packaged_deepcache_settings

            packaged = packaged_deepcache_settings()
            settings = replace(packaged, cache_interval=int(sampler.get("cache_interval", packaged.cache_interval)))
            enable_deepcache(SimpleNamespace(unet=self.unet, scheduler=self.scheduler), settings)
            self.cache_interval = settings.cache_interval
        self.scaling = 0.18215

    @torch.no_grad()
    def reconstruct(self, frames: torch.Tensor) -> torch.Tensor:
        """The frames through the VAE (posterior mean): how much the tiny VAE alone blurs the mouths."""
        mean = self.vae.encode(frames.to(self.dtype)).latent_dist.mean
        return self.vae.decode(mean).sample.float().clamp(-1, 1)

    @torch.no_grad()
    def __call__(self, sample: dict, audio_embeds: torch.Tensor, seed: int) -> torch.Tensor:
        """(16, 3, 64, 64) frames in [-1, 1]: generated mouth region pasted into the ground-truth surroundings."""
        from latentsync.pipelines.conditioning import decode_latents, encode_latents, mask_to_latent
        from latentsync.pipelines.sampling import denoise, guided_step_count
        from latentsync.pipelines.settings import inference_settings
        from latentsync.utils.seeding import step_generator

        gen = step_generator(seed, 0, 0)
        per_call = inference_settings().vae.frames_per_call
        masked, ref = (encode_latents(self.vae, sample[key], gen, self.scaling, frames_per_call=per_call).to(self.dtype)
                       for key in ("masked_pixel_values", "ref_pixel_values"))
        mask = mask_to_latent(sample["masks"], masked.shape[-2:]).to(self.dtype)
        latents = torch.randn((1, 4, 1, *masked.shape[-2:]), generator=gen).expand(-1, -1, masked.shape[2], -1, -1)
        latents = latents.to(self.dtype)
        steps = int(self.sampler["inference_steps"])
        guided = guided_step_count(steps, float(self.sampler.get("guidance_fraction", 1.0)), self.cache_interval)
        latents = denoise(self.unet, self.scheduler, latents, mask, masked, ref, audio_embeds.to(self.dtype),
                          num_inference_steps=steps, guidance_scale=float(self.sampler["guidance_scale"]),
                          generator=gen, guided_steps=guided)
        frames = decode_latents(self.vae, latents, self.scaling, frames_per_call=per_call).float().clamp(-1, 1)
        keep = sample["masks"]
        return frames * (1 - keep) + sample["gt_pixel_values"] * keep


def evaluate(args, data: Path, ckpts: dict, syncnet_ckpt: Path, unet_ckpt: Path, overrides=(), sampler=None,
             frames_out: list | None = None) -> dict:
    """Own-audio vs shuffled-audio sync of regenerated held-out windows. `sampler` defaults to the proof's own
    evaluation sampler (DDIM `--eval_steps`, fp32); `frames_out`, if given, receives the own-audio frames."""
    from latentsync.data.syncnet_dataset import syncnet_visual_input
    from latentsync.data.unet_dataset import UNetDataset
    from latentsync.models.stable_syncnet import StableSyncNet
    from latentsync.models.sync_loss import sync_probability
    from latentsync.training.settings import UNetTrainingSettings

    syncnet = StableSyncNet.from_pretrained(OmegaConf.to_container(load_config(SYNCNET_CONFIG).model), syncnet_ckpt)
    syncnet.eval()
    settings = UNetTrainingSettings.load(UNET_CONFIG, [f"ckpt.whisper_path={ckpts['whisper']}",
                                                       f"data.audio_mel_cache_dir={args.work / 'cache' / 'mel'}",
                                                       f"data.audio_embeds_cache_dir={args.work / 'cache' / 'embeds'}",
                                                       "run.seed=2024"])
    dataset = UNetDataset(str(data / "val"), settings)
    samples = [dataset.sample(i, 0) for i in range(len(dataset))]
    sampler = sampler or {**REFERENCE_SAMPLER, "inference_steps": args.eval_steps, "guidance_scale": args.guidance_scale}
    generate = Generator(ckpts, unet_ckpt, sampler, overrides)
    rng = np.random.default_rng(0)
    shuffle = np.roll(np.arange(len(samples)), int(rng.integers(1, len(samples))))  # a derangement

    @torch.no_grad()
    def score(frames: torch.Tensor, mel: torch.Tensor) -> float:
        vision, audio = syncnet(syncnet_visual_input(frames[None], True), mel[None])
        return float(sync_probability(vision, audio))

    rows = []
    started = time.perf_counter()
    for i, s in enumerate(samples):
        other = samples[shuffle[i]]
        matched = generate(s, s["audio_embeds"], seed=i)
        if frames_out is not None:
            frames_out.append(matched)
        control = generate(s, other["audio_embeds"], seed=i)  # same noise, same frames, someone else's audio
        rows.append({
            "clip": Path(s["video_path"]).name,
            "generated_own_audio": score(matched, s["mel"]),
            "generated_shuffled_audio": score(control, s["mel"]),
            "ground_truth": score(s["gt_pixel_values"], s["mel"]),
            "ground_truth_through_vae": score(generate.reconstruct(s["gt_pixel_values"]), s["mel"]),
            "ground_truth_vs_other_audio": score(s["gt_pixel_values"], other["mel"]),
        })
        logger.info("eval %s: own %.3f shuffled %.3f (gt %.3f)", rows[-1]["clip"], rows[-1]["generated_own_audio"],
                    rows[-1]["generated_shuffled_audio"], rows[-1]["ground_truth"])
    own = np.array([r["generated_own_audio"] for r in rows])
    ctl = np.array([r["generated_shuffled_audio"] for r in rows])
    wins = int((own > ctl).sum())
    return {
        "clips": len(rows),
        "mean_sync": {key: float(np.mean([r[key] for r in rows])) for key in rows[0] if key != "clip"},
        "own_beats_shuffled": wins,
        "sign_test_p": sign_test_p(wins, len(rows)),
        "mean_difference": float((own - ctl).mean()),
        "sampler": sampler,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }


def psnr(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """PSNR in dB of frames in [-1, 1] (peak 2), over all clips together."""
    mse = float(torch.mean(torch.stack([torch.mean((x - y) ** 2) for x, y in zip(a, b, strict=True)])))
    return float("inf") if mse == 0 else 10 * float(np.log10(4.0 / mse))


def quality_guard(args) -> dict:
    """Each inference preset against plain 20-step fp32 DDIM, with the trained models of an earlier full run:
    own-audio sync (must stay >= GUARD_SYNC_RATIO x the reference), own > shuffled (>= GUARD_MIN_WINS of 32),
    and the PSNR of the preset's frames against the reference frames."""
    from benchmarks.candidates import option_changes
    from latentsync.api import preset_values, resolve_dtype

    results = json.loads((args.work / "results.json").read_text())
    data, ckpts = Path(args.data), {"vae": str(args.work / "ckpts" / "vae"),
                                    "whisper": str(args.work / "ckpts" / "whisper_tiny.pt")}
    syncnet_ckpt, unet_ckpt = Path(results["syncnet"]["checkpoint"]), Path(results["unet"]["stage2_checkpoint"])
    runs = {"reference (ddim 20, fp32, no DeepCache)": REFERENCE_SAMPLER}
    for name in args.presets:
        values = preset_values(name)
        runs[f"preset {name}"] = sampler = {key: values[key] for key in REFERENCE_SAMPLER}
        if sampler["dtype"] == "fast" and resolve_dtype("fast", torch.device("cpu")) != torch.bfloat16:
            # this CPU has no native bf16, so `fast` ran in fp32 above; bf16 is what it runs on CPUs that have it
            runs[f"preset {name}, bf16 forced"] = {**sampler, "dtype": "bf16"}
    for text in args.candidate:  # "key=value,...": the fast preset with these values changed
        runs[f"candidate {text}"] = {**{key: preset_values("fast")[key] for key in REFERENCE_SAMPLER},
                                     **option_changes(text)}
    out, frames = {}, {}
    for label, sampler in runs.items():
        frames[label] = []
        out[label] = evaluate(args, data, ckpts, syncnet_ckpt, unet_ckpt, sampler=sampler, frames_out=frames[label])
        out[label]["dtype"] = str(resolve_dtype(sampler["dtype"], torch.device("cpu"))).removeprefix("torch.")
        out[label].pop("rows")
        logger.info("guard %s: own %.3f shuffled %.3f wins %d/%d in %.0f s", label,
                    out[label]["mean_sync"]["generated_own_audio"], out[label]["mean_sync"]["generated_shuffled_audio"],
                    out[label]["own_beats_shuffled"], out[label]["clips"], out[label]["seconds"])
    reference = next(iter(runs))
    ref_sync = out[reference]["mean_sync"]["generated_own_audio"]
    for label in runs:
        own = out[label]["mean_sync"]["generated_own_audio"]
        out[label]["sync_ratio_to_reference"] = own / ref_sync
        out[label]["psnr_vs_reference_db"] = psnr(frames[label], frames[reference])
        out[label]["guard_held"] = bool(own >= GUARD_SYNC_RATIO * ref_sync and
                                        out[label]["own_beats_shuffled"] >= GUARD_MIN_WINS)
    (args.work / "quality_guard.json").write_text(json.dumps(out, indent=1))
    return out


def sign_test_p(wins: int, n: int) -> float:
    """One-sided binomial sign test: probability of >= wins successes out of n under a fair coin."""
    from math import comb

    return float(sum(comb(n, k) for k in range(wins, n + 1)) / 2**n)


# ---------------------------------------------------------------------------------------------- report


def chart(path: Path, results: dict) -> Path:
    """SyncNet validation accuracy over steps, and mean sync scores of real and generated held-out windows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    syncnet, final, stage1 = results["syncnet"], results["evaluation"], results["evaluation_stage1"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [2, 3]})
    left.plot(syncnet["val_step"], syncnet["val_acc"], marker=".")
    left.axhline(0.5, color="grey", lw=0.8, ls="--", label="chance")
    left.axhline(0.85, color="green", lw=0.8, ls=":", label="target 85 %")
    left.set(xlabel="step (batch 32)", ylabel="validation accuracy", title="SyncNet, held-out clips", ylim=(0.3, 1.0))
    left.legend(loc="lower right")
    bars = [("real", final["mean_sync"]["ground_truth"], "#888"),
            ("real\nvia VAE", final["mean_sync"]["ground_truth_through_vae"], "#aaa"),
            ("stage 1\nown audio", stage1["mean_sync"]["generated_own_audio"], "#8c8"),
            ("stage 1\nshuffled", stage1["mean_sync"]["generated_shuffled_audio"], "#e99"),
            ("stage 2\nown audio", final["mean_sync"]["generated_own_audio"], "#2a7"),
            ("stage 2\nshuffled", final["mean_sync"]["generated_shuffled_audio"], "#c44"),
            ("real vs\nother audio", final["mean_sync"]["ground_truth_vs_other_audio"], "#ccc")]
    right.bar([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars])
    right.set(ylabel="SyncNet sync probability", ylim=(0, 1),
              title=f"Sync with the clip's own audio, {final['clips']} held-out clips")
    right.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("output/learning_proof"))
    parser.add_argument("--data", default="data/synthetic")
    parser.add_argument("--num_train", type=int, default=160)
    parser.add_argument("--num_val", type=int, default=32)
    parser.add_argument("--vae_steps", type=int, default=500)
    parser.add_argument("--vae_batch", type=int, default=16)
    parser.add_argument("--syncnet_steps", type=int, default=500)
    parser.add_argument("--syncnet_batch", type=int, default=32)
    parser.add_argument("--syncnet_val_every", type=int, default=100)
    parser.add_argument("--syncnet_val_samples", type=int, default=192)
    parser.add_argument("--stage1_steps", type=int, default=400)
    parser.add_argument("--stage2_steps", type=int, default=200)
    parser.add_argument("--unet_batch", type=int, default=4)
    parser.add_argument("--unet_lr", type=float, default=3e-4)
    parser.add_argument("--sync_loss_weight", type=float, default=0.3,
                        help="stage-2 sync loss weight (official 0.05; higher for a short demo run)")
    parser.add_argument("--eval_steps", type=int, default=10)
    parser.add_argument("--guidance_scale", type=float, default=1.5)
    parser.add_argument("--docs", action="store_true", help="copy the chart to docs/training_learning_proof.png")
    parser.add_argument("--chart_only", action="store_true", help="redraw the chart from <work>/results.json")
    parser.add_argument("--reuse_trained", action="store_true",
                        help="reuse the fitted VAE and the SyncNet / U-Net runs already in --work that reached the "
                             "asked steps (an interrupted proof goes on where it stopped)")
    parser.add_argument("--guard", action="store_true",
                        help="quality guard of the inference presets with the models of an earlier full run in --work")
    parser.add_argument("--presets", nargs="*", default=["quality", "fast"])
    parser.add_argument("--candidate", action="append", default=[], metavar="KEY=VALUE,...",
                        help="--guard: also try the fast preset with these sampler values changed, e.g. "
                             "inference_steps=6,guidance_fraction=0.5,cache_interval=4 (repeatable)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.chart_only:
        png = chart(args.work / "learning_proof.png", json.loads((args.work / "results.json").read_text()))
        if args.docs:
            shutil.copy(png, REPO_ROOT / "docs" / "training_learning_proof.png")
        return 0
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.guard:
        guard = quality_guard(args)
        for label, row in guard.items():
            print(f"{label}: own-audio sync {row['mean_sync']['generated_own_audio']:.3f} "
                  f"({row['sync_ratio_to_reference']:.2f}x reference), shuffled "
                  f"{row['mean_sync']['generated_shuffled_audio']:.3f}, own wins {row['own_beats_shuffled']}/"
                  f"{row['clips']}, PSNR vs reference {row['psnr_vs_reference_db']:.1f} dB, "
                  f"{row['seconds']:.0f} s, guard {'held' if row['guard_held'] else 'FAILED'}")
        return 0 if all(row["guard_held"] for row in guard.values()) else 1

    timings, results = {}, {"args": {k: str(v) for k, v in vars(args).items()}}
    start = time.time()
    data = make_data(args)
    ckpts = make_checkpoints(args, data)
    timings["data_and_vae_minutes"] = (time.time() - start) / 60
    syncnet_ckpt, results["syncnet"] = train_syncnet(args, data)
    unet_ckpt, results["unet"] = train_unet(args, data, ckpts, syncnet_ckpt)
    t0 = time.time()
    results["evaluation"] = evaluate(args, data, ckpts, syncnet_ckpt, unet_ckpt)
    results["evaluation_stage1"] = evaluate(args, data, ckpts, syncnet_ckpt, Path(results["unet"]["stage1_checkpoint"]),
                                            STAGE1_OVERRIDES)
    timings["evaluation_minutes"] = (time.time() - t0) / 60
    timings["total_minutes"] = (time.time() - start) / 60
    results["timings"] = timings
    results["vae_final_loss"] = ckpts["vae_final_loss"]
    (args.work / "results.json").write_text(json.dumps(results, indent=1))
    png = chart(args.work / "learning_proof.png", results)
    if args.docs:
        shutil.copy(png, REPO_ROOT / "docs" / "training_learning_proof.png")
    ev = results["evaluation"]
    logger.info("SyncNet final validation accuracy %.3f after %.1f min", results["syncnet"]["val_acc"][-1],
                results["syncnet"]["minutes"])
    logger.info("U-Net sync: own audio %.3f vs shuffled %.3f (own wins %d/%d, sign test p=%.2g); real video %.3f",
                ev["mean_sync"]["generated_own_audio"], ev["mean_sync"]["generated_shuffled_audio"],
                ev["own_beats_shuffled"], ev["clips"], ev["sign_test_p"], ev["mean_sync"]["ground_truth"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
