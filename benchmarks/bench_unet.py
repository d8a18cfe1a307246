"""Benchmark one U-Net forward of the full stage-2 architecture on CPU (random weights, fp32).

The default case is the inference step of a 16-frame 256 px clip with classifier-free guidance:
sample (2, 13, 16, 32, 32) and audio tokens (32, 50, 384). Reports the median seconds over `--runs`
timed forwards (after one untimed warm-up unless `--no-warmup`), their CPU seconds (all threads; steadier
than wall time when other jobs share the cores) and the process's peak RSS.

    python benchmarks/bench_unet.py                                   # 256 px, 3 runs
    python benchmarks/bench_unet.py --resolution 512 --runs 1 --no-warmup
    python benchmarks/bench_unet.py --official /path/to/LatentSync     # side by side with the official

`--official` takes a checkout of bytedance/LatentSync (used as a reference only: nothing of it is copied
or committed), builds its `UNet3DConditionModel` from the same config, loads our random weights into it
and alternates timed forwards of the two models on the same inputs, reporting the ratio of the medians
and the largest output difference.

The load average is printed before and after: other processes on the machine skew the numbers.
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import statistics
import sys
import time
import types
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentsync.config import load_config, model_config  # noqa: E402
from latentsync.models.unet import UNet3DConditionModel  # noqa: E402
from latentsync.utils.allocator import keep_freed_memory  # noqa: E402

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


def official_unet_class(checkout: Path):
    """The official `UNet3DConditionModel`, imported from a checkout as package `official_latentsync`.

    The other name keeps it from shadowing ours. Its `utils.util` imports training-only libraries
    (torchvision, ...) for one logging function the model calls when loading a checkpoint, which this
    benchmark never does; a stand-in provides that function instead.
    """
    package_dir = checkout / "latentsync"
    if not (package_dir / "models" / "unet.py").is_file():
        raise SystemExit(f"--official {checkout}: no latentsync/models/unet.py there (expected a LatentSync checkout)")
    for name, folder in (("official_latentsync", package_dir), ("official_latentsync.utils", package_dir / "utils")):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    util = types.ModuleType("official_latentsync.utils.util")
    util.zero_rank_log = lambda logger, message: logger.info(message)
    sys.modules[util.__name__] = util
    return importlib.import_module("official_latentsync.models.unet").UNet3DConditionModel


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
    parser.add_argument("--official", type=Path, help="checkout of bytedance/LatentSync to time side by side")
    parser.add_argument("--allocator", choices=["default", "keep"], default="default",
                        help="keep: the process keeps freed memory (latentsync.utils.allocator, as the inference "
                             "pipeline runs); default: glibc's own setting. Applies to every model of the run")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.allocator == "keep" and not keep_freed_memory():
        raise SystemExit("--allocator keep needs glibc (Linux)")
    print(f"allocator {args.allocator}; torch {torch.__version__}, {args.threads} threads, load average before: {os.getloadavg()}")
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

    models = {"ours": unet}
    if args.official is not None:
        official = official_unet_class(args.official).from_config(config).eval()
        official.load_state_dict(unet.state_dict())
        models["official"] = official
        print(f"official model from {args.official} loaded with the same weights; peak RSS {peak_rss_gib():.2f} GiB")

    side = args.resolution // LATENT_DOWNSCALE
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(args.batch, config["in_channels"], args.frames, side, side, generator=generator)
    audio = torch.randn(args.batch * args.frames, 50, config["cross_attention_dim"], generator=generator)
    timestep = torch.tensor(500)
    print(f"sample {tuple(sample.shape)}, encoder_hidden_states {tuple(audio.shape)}, layout {args.layout}")

    times = {name: [] for name in models}
    cpu_times = {name: [] for name in models}
    faults = {name: [] for name in models}
    outputs = {}
    with torch.inference_mode():
        if not args.no_warmup:
            for name, model in models.items():
                started = time.perf_counter()
                model(sample, timestep, encoder_hidden_states=audio)
                print(f"{name} warm-up forward: {time.perf_counter() - started:.2f} s")
        for _ in range(args.runs):
            for name, model in models.items():  # alternating, so load changes hit both alike
                started, cpu_started = time.perf_counter(), time.process_time()
                faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                outputs[name] = model(sample, timestep, encoder_hidden_states=audio).sample
                times[name].append(time.perf_counter() - started)
                cpu_times[name].append(time.process_time() - cpu_started)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
                print(f"{name} forward: {times[name][-1]:.2f} s wall, {cpu_times[name][-1]:.2f} s CPU (all threads), "
                      f"{faults[name][-1] / 1e6:.2f} M page faults", flush=True)
    assert all(torch.isfinite(out).all() for out in outputs.values())
    for name in models:
        print(
            f"RESULT {name} resolution={args.resolution} frames={args.frames} batch={args.batch} "
            f"threads={args.threads} median={statistics.median(times[name]):.2f}s min={min(times[name]):.2f}s "
            f"cpu_median={statistics.median(cpu_times[name]):.2f}s "
            f"page_faults_median={statistics.median(faults[name]) / 1e6:.2f}M allocator={args.allocator} runs={len(times[name])} "
            f"peak_rss={peak_rss_gib():.2f}GiB load_after={os.getloadavg()}"
        )
    if "official" in models:
        ratio = statistics.median(times["ours"]) / statistics.median(times["official"])
        cpu_ratio = statistics.median(cpu_times["ours"]) / statistics.median(cpu_times["official"])
        difference = (outputs["ours"] - outputs["official"]).abs().max().item()
        scale = outputs["official"].abs().max().item()
        print(
            f"RATIO ours/official wall={ratio:.3f} cpu={cpu_ratio:.3f}; "
            f"max |ours - official| = {difference:.3g} (output max |x| {scale:.3g})"
        )


if __name__ == "__main__":
    main()
