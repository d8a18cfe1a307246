"""VAE encode/decode CPU seconds per frame by memory layout and dtype (sd-vae-ft-mse size, random weights).

    python benchmarks/bench_vae.py --frames 8 --rounds 2 --threads 1

Why: the pipeline encodes two 256 px images per output frame (masked and reference) and decodes one, so the
VAE is a third to a half of a `fast` run on the CPU. Each round times, in one process and alternating so
that other load hits all variants alike, `encode_latents` / `decode_latents` (the functions the pipeline calls;
the encoder gets channels-last input on the CPU) against the plain diffusers calls in NCHW. CPU seconds of
the process (all threads), which are steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from latentsync.config import CONFIG_DIR  # noqa: E402
from latentsync.pipelines.conditioning import decode_latents, encode_latents  # noqa: E402
from latentsync.pipelines.settings import inference_settings  # noqa: E402

SCALING = 0.18215  # sd-vae-ft-mse, as the pipeline sets it
PER_CALL = inference_settings().vae.frames_per_call  # frames per VAE call, as the pipeline passes it


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def random_vae(dtype: torch.dtype):
    from diffusers import AutoencoderKL

    config = json.loads((CONFIG_DIR / "vae" / "sd-vae-ft-mse.json").read_text())
    torch.manual_seed(0)
    vae = AutoencoderKL.from_config({k: v for k, v in config.items() if not k.startswith("_")}).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.normal_(0, 0.02)
    return vae.to(dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dtypes", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pixels = torch.rand(args.frames, 3, 256, 256) * 2 - 1
    latents = torch.randn(1, 4, args.frames, 32, 32)
    for name in args.dtypes:
        dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[name]
        vae = random_vae(dtype)
        variants = {
            "encode, NCHW (diffusers as called)": lambda vae=vae, dtype=dtype: vae.encode(pixels.to(dtype)).latent_dist.mean,
            "encode, encode_latents (channels-last input)": lambda vae=vae: encode_latents(vae, pixels, None, SCALING, frames_per_call=PER_CALL),
            "decode, decode_latents (NCHW)": lambda vae=vae: decode_latents(vae, latents, SCALING, frames_per_call=PER_CALL),
            "decode, channels-last input": lambda vae=vae, dtype=dtype: vae.decode(
                (latents[0].transpose(0, 1) / SCALING).to(dtype).contiguous(memory_format=torch.channels_last)).sample,
        }
        seconds = {key: [] for key in variants}
        with torch.inference_mode():
            for _ in range(args.rounds + 1):  # the first round warms up and is not kept
                for key, run in variants.items():
                    start = cpu_seconds()
                    run()
                    seconds[key].append(cpu_seconds() - start)
        for key, values in seconds.items():
            per_frame = statistics.median(values[1:]) / args.frames
            print(f"RESULT {name} {key}: {per_frame:.3f} CPU s per frame (rounds {[round(v, 2) for v in values[1:]]})",
                  flush=True)


if __name__ == "__main__":
    main()
