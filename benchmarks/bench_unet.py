"""Benchmark one U-Net forward of the full stage-2 architecture on CPU (random weights, fp32).

The default case is the inference step of a 16-frame 256 px clip with classifier-free guidance:
sample (2, 13, 16, 32, 32) and audio tokens (32, 50, 384). Reports the median seconds over `--runs`
timed forwards (after one untimed warm-up unless `--no-warmup`), their CPU seconds (all threads; steadier
than wall time when other jobs share the cores) and the process's peak RSS.

    python benchmarks/bench_unet.py                                   # 256 px, 3 runs
    python benchmarks/bench_unet.py --resolution 512 --runs 1 --no-warmup

The load average is printed before and after: other processes on the machine skew the numbers.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentsync.config import load_config, model_config  # noqa: E402
from latentsync.models.unet import UNet3DConditionModel  # noqa: E402

LATENT_DOWNSCALE = 8  # the VAE turns 256 px frames into 32x32 latents


def randomise_(model: torch.nn.Module, seed: int = 0) -> None:
    """O(1) activations everywhere (zero-initialised layers would make the run unrealistically cheap)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0, 1.0 / (p[0].numel() ** 0.5), generator=generator)
            elif "norm" in name and name.endswith("weight"):
                p.normal_(1.0, 0.1, generator=generator)
            else:
                p.normal_(0, 0.05, generator=generator)


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/unet/stage2.yaml")
    parser.add_argument("--resolution", type=int, default=256, help="pixel resolution (latents are 1/8)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=2, help="2 = classifier-free guidance")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-warmup", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layout", choices=["channels_last", "contiguous"], default="channels_last")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average before: {os.getloadavg()}")
    config = model_config(load_config(args.config))
    started = time.perf_counter()
    unet = UNet3DConditionModel.from_config(config).eval()
    randomise_(unet)
    if args.layout == "contiguous":
        unet.set_channels_last(False)
    print(
        f"built {args.config} ({sum(p.numel() for p in unet.parameters()) / 1e9:.2f} B params) "
        f"in {time.perf_counter() - started:.1f} s; peak RSS {peak_rss_gib():.2f} GiB"
    )

    side = args.resolution // LATENT_DOWNSCALE
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(args.batch, config["in_channels"], args.frames, side, side, generator=generator)
    audio = torch.randn(args.batch * args.frames, 50, config["cross_attention_dim"], generator=generator)
    timestep = torch.tensor(500)
    print(f"sample {tuple(sample.shape)}, encoder_hidden_states {tuple(audio.shape)}, layout {args.layout}")

    times, cpu_times = [], []
    with torch.inference_mode():
        if not args.no_warmup:
            started = time.perf_counter()
            unet(sample, timestep, encoder_hidden_states=audio)
            print(f"warm-up forward: {time.perf_counter() - started:.2f} s")
        for _ in range(args.runs):
            started, cpu_started = time.perf_counter(), time.process_time()
            out = unet(sample, timestep, encoder_hidden_states=audio).sample
            times.append(time.perf_counter() - started)
            cpu_times.append(time.process_time() - cpu_started)
            print(f"forward: {times[-1]:.2f} s wall, {cpu_times[-1]:.2f} s CPU (all threads)")
    assert torch.isfinite(out).all()
    print(
        f"RESULT resolution={args.resolution} frames={args.frames} batch={args.batch} threads={args.threads} "
        f"median={statistics.median(times):.2f}s min={min(times):.2f}s cpu_median={statistics.median(cpu_times):.2f}s "
        f"runs={len(times)} "
        f"peak_rss={peak_rss_gib():.2f}GiB load_after={os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
