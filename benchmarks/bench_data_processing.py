"""Throughput of each data-processing step on the generated fixture set: clips per minute per CPU core.

    python benchmarks/bench_data_processing.py                      # fixture set, one pinned core
    python benchmarks/bench_data_processing.py --models standin     # test doubles instead of full-size models
    python benchmarks/bench_data_processing.py --cutting            # shot + segment on the 1080p demo clip,
                                                                    # next to the previous full-decode method

Each step runs in this process (one worker) pinned to one core (ffmpeg children inherit the pinning);
clips/min/core divides by the CPU time of the process and its ffmpeg children (robust to other load on a
shared machine), the wall figure by the summed per-item wall time; with --num_workers N on N cores a step scales about linearly (items are independent).
`--models random` (default) uses the official model classes at full size with random weights: the SyncNet
(13.6 M parameters) and HyperIQA (27.4 M), so the compute equals the real checkpoints'; the SyncNet's face
tracks come from the project's face detector (S3FD weights are not needed). Random weights score
arbitrarily, so the sync thresholds are opened to let every clip through to the quality step.
Results go to benchmarks/results/data_processing.json and are printed as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

STAND_INS = [
    "models.syncnet.factory=tests.data_processing_fixtures:beat_syncnet",
    "models.face_detector.factory=tests.data_processing_fixtures:centre_face_boxes",
    "models.hyperiqa.factory=tests.data_processing_fixtures:sharpness_quality",
]
RANDOM_MODELS = [
    "models.syncnet.factory=benchmarks.bench_data_processing:random_syncnet",
    "models.hyperiqa.factory=benchmarks.bench_data_processing:random_hyperiqa",
    "models.face_detector.checkpoint=/nonexistent/sfd_face.pth",  # -> the project's detector via eval's 'auto'
    "sync.detector=auto",
    "sync.min_confidence=-1000000",
    "sync.max_abs_offset=15",
]


def random_syncnet(cfg=None):
    """Full-size evaluation SyncNet with random weights (same compute as syncnet_v2.model)."""
    import torch

    from eval.settings import SyncNetProtocol
    from eval.syncnet.syncnet_eval import SyncNetEval

    torch.manual_seed(0)
    return SyncNetEval(protocol=SyncNetProtocol.from_eval_config())


def random_hyperiqa(cfg=None):
    """Full-size HyperIQA with random weights (same compute as koniq_pretrained.pkl)."""
    import torch

    from eval.hyper_iqa import KONIQ_ARGS, HyperIQAScorer, HyperNet

    torch.manual_seed(0)
    return HyperIQAScorer(model=HyperNet(**KONIQ_ARGS))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (ffmpeg)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _previous_cutting(path: Path, cfg, out_dir: Path) -> int:
    """The method before: scenedetect.detect on full OpenCV frames, then every shot re-encoded (twice: shot
    and segment). Kept here only to measure the ratio in the same run."""
    from scenedetect import AdaptiveDetector, detect

    from data_processing.clips import audio_span
    from latentsync.utils.media import VideoReader, VideoWriter, read_audio, write_wav

    s = cfg.shot
    detect(str(path), AdaptiveDetector(adaptive_threshold=s.adaptive_threshold, min_scene_len=s.min_scene_len,
                                       window_width=s.window_width, min_content_val=s.min_content_val),
           backend="opencv")
    source = path
    for step in ("shot", "segment"):
        with VideoReader(source) as reader:
            audio = read_audio(source, cfg.resample.sample_rate)
            wav = out_dir / f"{step}.wav"
            write_wav(wav, audio_span(audio, 0, len(reader), reader.fps, cfg.resample.sample_rate),
                      cfg.resample.sample_rate)
            out = out_dir / f"previous_{step}.mp4"
            with VideoWriter(out, reader.fps, audio_path=wav, crf=cfg.encoding.crf, preset=cfg.encoding.preset,
                             audio_bitrate=cfg.encoding.audio_bitrate) as writer:
                for chunk in reader.iter_chunks(cfg.runtime.chunk_size):
                    writer.write(chunk)
        source = out
    return len(VideoReader(source))


def cutting(args) -> None:
    """Shot + segment on the demo clip after step 2 (25 fps H.264), CPU seconds per media second."""
    from data_processing import run_pipeline
    from data_processing.settings import load_settings
    from latentsync.utils.media import probe_video

    work = Path(tempfile.mkdtemp(prefix="bench_cut_"))
    (work / "raw").mkdir()
    shutil.copy(args.video, work / "raw" / Path(args.video).name)
    cfg = load_settings(overrides=STAND_INS)
    run_pipeline(work / "raw", cfg, steps=["resample"], progress=False, log=lambda *_: None)
    resampled = next((work / "resampled").glob("*.mp4"))
    info = probe_video(resampled)
    rows = []
    started, cpu_started = time.perf_counter(), cpu_seconds()
    run_pipeline(work / "raw", cfg, steps=["shot", "segment"], progress=False, log=lambda *_: None)
    rows.append(("this version (downscaled detection, stream kept)", time.perf_counter() - started,
                 cpu_seconds() - cpu_started))
    started, cpu_started = time.perf_counter(), cpu_seconds()
    _previous_cutting(resampled, cfg, work)
    rows.append(("previous (full-frame detect, re-encode per step)", time.perf_counter() - started,
                 cpu_seconds() - cpu_started))
    print(f"clip: {args.video} -> {resampled.name}: {info.width}x{info.height}, {info.duration:.1f} s, "
          f"pinned to core {args.core}")
    print("| method | wall s | CPU s | x real time per core |\n| --- | ---: | ---: | ---: |")
    for name, wall, cpu in rows:
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {info.duration / cpu:.2f} |")
    segments = sorted((work / "segmented").glob("*.mp4"))
    print(f"segments written: {[p.name for p in segments]}")
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", choices=("random", "standin"), default="random")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--cutting", action="store_true", help="time shot + segment on --video instead")
    parser.add_argument("--video", default=str(REPO_ROOT.parent / "shared" / "media" / "demo1_video.mp4"))
    args = parser.parse_args()

    os.sched_setaffinity(0, {args.core})
    import torch

    if args.cutting:
        return cutting(args)

    torch.set_num_threads(1)
    from data_processing import run_pipeline
    from data_processing.manifest import read_manifest
    from data_processing.pipeline import STEP_NAMES
    from data_processing.settings import load_settings
    from tests.data_processing_fixtures import build_fixture_folder

    work = Path(tempfile.mkdtemp(prefix="bench_dp_"))
    build_fixture_folder(work / "raw")
    cfg = load_settings(overrides=STAND_INS + (RANDOM_MODELS if args.models == "random" else []))
    rows = []
    for step in STEP_NAMES:
        started, cpu_started = time.perf_counter(), cpu_seconds()
        run_pipeline(work / "raw", cfg, steps=[step], progress=False, log=lambda *_: None)
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        records = list(read_manifest(work / "manifests" / step).values())
        busy = sum(r["seconds"] for r in records)
        media_seconds = sum(r["duration"] or 0.0 for r in records)
        rows.append({
            "step": step, "clips": len(records), "kept": sum(r["status"] == "kept" for r in records),
            "media_seconds": round(media_seconds, 1), "busy_s": round(busy, 2), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),  # this process + its ffmpeg children, including model set-up
            "clips_per_min_per_core": round(60 * len(records) / cpu, 1) if cpu else None,
            "clips_per_min_busy": round(60 * len(records) / busy, 1) if busy else None,
            "media_seconds_per_cpu_s": round(media_seconds / cpu, 2) if cpu else None,
        })
    result = {"models": args.models, "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
              "pinned_core": args.core, "steps": rows}
    out = REPO_ROOT / "benchmarks" / "results" / "data_processing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("| step | clips in | kept | media s | CPU s | clips/min/core (CPU) | clips/min (wall, pinned) | media s per CPU s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['step']} | {r['clips']} | {r['kept']} | {r['media_seconds']} | {r['cpu_s']} | "
              f"{r['clips_per_min_per_core']} | {r['clips_per_min_busy']} | {r['media_seconds_per_cpu_s']} |")
    print(f"results: {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work folder: {work}")


if __name__ == "__main__":
    main()
