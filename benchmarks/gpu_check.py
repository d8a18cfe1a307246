"""The GPU check of issue 13: CUDA-marked tests, then both presets end to end with random real-size weights.

    bash benchmarks/gpu_check.sh                         # on a CUDA machine: JSON in $OUT (or --out)
    bash benchmarks/gpu_check.sh --device cpu --frames 16 --models tiny --sizes 64 128 --out /tmp/check  # CPU fallback

Per resolution (256 px with stage2.yaml, 512 px with stage2_512.yaml) and preset (quality, fast), one run of
the inference pipeline on ../shared/media/demo1 (its first `--frames` frames; a generated talking-head clip
when the demo is absent), reporting output fps, peak VRAM (torch's allocator) and the process's peak RSS so
far. On CUDA both presets run in fp16 (quality: `auto` = fp16 on capability > 7; fast: fp16). Needs only the
working tree: weights are random (configs/vae/sd-vae-ft-mse.json etc.), nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEMO_VIDEO = REPO_ROOT.parent / "shared" / "media" / "demo1_video.mp4"
DEMO_AUDIO = REPO_ROOT.parent / "shared" / "media" / "demo1_audio.wav"


def cuda_tests(device: str) -> dict:
    """`pytest -m cuda`: the tests that need a GPU (they skip on a machine without one)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider"],
                          cwd=REPO_ROOT, capture_output=True, text=True)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
    return {"exit_code": proc.returncode, "summary": tail[-1] if tail else "", "tail": tail,
            "seconds": round(time.perf_counter() - started, 1), "device": device}


def clip(frames: int, folder: Path) -> tuple[Path, Path, bool]:
    """The demo's first `frames` frames (and audio), or a generated clip when ../shared is absent."""
    from latentsync.utils.media import ffmpeg_exe

    seconds = frames / 25
    if DEMO_VIDEO.is_file() and DEMO_AUDIO.is_file():
        video, audio = folder / "demo1_part.mp4", folder / "demo1_part.wav"
        base = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y"]
        subprocess.run([*base, "-i", str(DEMO_VIDEO), "-frames:v", str(frames), "-an", "-c:v", "libx264",
                        "-preset", "veryfast", "-crf", "12", str(video)], check=True)
        subprocess.run([*base, "-i", str(DEMO_AUDIO), "-t", f"{seconds}", "-ac", "1", "-ar", "16000", str(audio)],
                       check=True)
        return video, audio, False
    from tools.make_demo_clip import make_demo_clip

    video, audio = make_demo_clip(folder, seconds=seconds, width=360, height=480)
    return video, audio, True


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_presets(args, folder: Path) -> list[dict]:
    import torch

    from benchmarks.random_models import random_models
    from latentsync.api import LipsyncOptions, build_pipeline, lipsync, resolve_dtype
    from latentsync.pipelines.options import SamplingOptions

    device = torch.device(args.device)
    video, audio, generated = clip(args.frames, folder)
    rows = []
    for size in args.sizes:
        unet, vae, audio_encoder = random_models(args.models, size, folder, device=str(device))
        for preset in args.presets:  # quality before fast: on the CPU fast casts to bf16 (not undone)
            opts = LipsyncOptions.from_kwargs(preset=preset, device=str(device))
            dtype = resolve_dtype(opts.dtype, device)
            unet.to(dtype)
            vae.to(dtype)
            loaded = build_pipeline(opts, unet=unet, vae=vae, audio_encoder=audio_encoder,
                                    clip=SamplingOptions(resolution=size, weight_dtype=dtype))
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(device)
            started = time.perf_counter()
            result = lipsync(str(video), str(audio), str(folder / f"{size}_{preset}.mp4"), opts, pipeline=loaded,
                             seed=0, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - started
            if loaded.pipeline.deepcache is not None:
                loaded.pipeline.deepcache.disable()
            row = {"resolution": size, "preset": preset, "models": args.models,
                   "settings": opts.settings_line(device, dtype).removeprefix("settings: "),
                   "frames": result.num_frames, "wall_s": round(wall, 2),
                   "output_fps": round(result.num_frames / wall, 3),
                   "stages_s": {k: round(v, 2) for k, v in result.seconds_per_stage.items()},
                   "peak_vram_mib": (round(torch.cuda.max_memory_allocated(device) / 2**20)
                                     if device.type == "cuda" else None),
                   "peak_rss_mib_so_far": round(peak_rss_mib()), "video": str(video), "video_generated": generated}
            rows.append(row)
            print(json.dumps(row), flush=True)
        del unet, vae, audio_encoder
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--frames", type=int, default=250, help="frames of the demo clip (250 = all of demo1)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--presets", nargs="+", default=["quality", "fast"])
    parser.add_argument("--models", choices=["real", "tiny"], default="real")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "output/gpu_check"))
    parser.add_argument("--skip_tests", action="store_true")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device; use --device cpu for the CPU fallback", file=sys.stderr)
        return 2
    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": {"platform": platform.platform(), "python": platform.python_version(),
                          "torch": torch.__version__, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                          "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
              "args": {k: str(v) for k, v in vars(args).items()}}
    started = time.perf_counter()
    report["cuda_tests"] = None if args.skip_tests else cuda_tests(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        report["runs"] = run_presets(args, Path(tmp))
    report["total_s"] = round(time.perf_counter() - started, 1)
    report["peak_rss_mib"] = round(peak_rss_mib())
    path = args.out / "gpu_check.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path} in {report['total_s']} s")
    tests_ok = report["cuda_tests"] is None or report["cuda_tests"]["exit_code"] in (0, 5)  # 5: none selected
    return 0 if tests_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
