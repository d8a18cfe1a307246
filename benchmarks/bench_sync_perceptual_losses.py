"""CPU timings of the training-time supervision modules: StableSyncNet, LPIPS (lower half), TREPA.

Random weights (no checkpoints needed); numbers are wall-clock medians. Example:

    .venv/bin/python benchmarks/bench_sync_perceptual_losses.py --threads 1
    .venv/bin/python benchmarks/bench_sync_perceptual_losses.py --threads 1 --full-syncnet

The full ViT-g TREPA extractor (1.0 B parameters, ~4 TFLOP per 16-frame clip) is not timed on CPU.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings

import torch

from latentsync.config import REPO_ROOT, load_config, model_config
from latentsync.models.lpips import LPIPS
from latentsync.models.stable_syncnet import StableSyncNet
from latentsync.models.sync_loss import sync_loss
from latentsync.trepa import TREPALoss, VideoMAEConfig, VideoMAEv2


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_syncnet(name: str, batch: int, backward: bool, repeats: int) -> str:
    cfg = load_config(REPO_ROOT / "configs" / "syncnet" / f"{name}.yaml")
    model = StableSyncNet(model_config(cfg))
    frames, res = cfg.data.num_frames, cfg.data.resolution
    channels = 4 if cfg.data.latent_space else 3
    height = res // 8 if cfg.data.latent_space else (res // 2 if cfg.data.lower_half else res)
    width = res // 8 if cfg.data.latent_space else res
    images = torch.randn(batch, frames * channels, height, width)
    mel = torch.randn(batch, 1, 80, math.ceil(frames / 5 * 16))  # 80 mel steps per second, 25 fps video

    def step():
        if backward:
            model.zero_grad(set_to_none=True)
            sync_loss(*model(images, mel)).backward()
        else:
            with torch.no_grad():
                model(images, mel)

    params = sum(p.numel() for p in model.parameters()) / 1e6
    seconds = _median_seconds(step, repeats)
    mode = "fwd+bwd" if backward else "fwd"
    return f"StableSyncNet {name} ({params:.1f} M params) batch {batch} {tuple(images.shape[1:])} {mode}: {seconds * 1000:.0f} ms"


def bench_lpips(frames: int, resolution: int, repeats: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric = LPIPS(trunk_path=None)
    pred = torch.rand(frames, 3, resolution, resolution, requires_grad=True)
    target = torch.rand(frames, 3, resolution, resolution)

    def step():
        pred.grad = None
        metric.lower_half_loss(pred * 2 - 1, target * 2 - 1).backward()

    seconds = _median_seconds(step, repeats)
    return f"LPIPS-VGG lower half, {frames} frames {resolution}px fwd+bwd: {seconds * 1000:.0f} ms"


def bench_trepa_tiny(batch: int, resolution: int, repeats: int) -> str:
    tiny = REPO_ROOT / "configs" / "trepa" / "tiny.yaml"
    loss_fn = TREPALoss(device="cpu", model=VideoMAEv2(VideoMAEConfig.from_yaml(tiny)), config_path=tiny)
    fake = torch.rand(batch, 3, 16, resolution, resolution, requires_grad=True)
    real = torch.rand(batch, 3, 16, resolution, resolution)

    def step():
        fake.grad = None
        loss_fn(fake * 2 - 1, real * 2 - 1).backward()

    seconds = _median_seconds(step, repeats)
    return f"TREPA tiny ViT (embed 64, depth 2), batch {batch} x 16 frames {resolution}px -> 224 fwd+bwd: {seconds * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-syncnet", action="store_true", help="also time syncnet_16_pixel_attn (401 M params)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    print(bench_syncnet("tiny", batch=4, backward=True, repeats=args.repeats))
    if args.full_syncnet:
        print(bench_syncnet("syncnet_16_pixel_attn", batch=1, backward=False, repeats=args.repeats))
        print(bench_syncnet("syncnet_16_pixel_attn", batch=1, backward=True, repeats=args.repeats))
    print(bench_lpips(frames=4, resolution=256, repeats=args.repeats))
    print(bench_trepa_tiny(batch=1, resolution=64, repeats=args.repeats))


if __name__ == "__main__":
    main()
