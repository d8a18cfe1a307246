"""Benchmark the evaluation models on the CPU (or CUDA): SyncNet windows, S3FD frames, HyperIQA, FVD arithmetic,
and the whole LSE-C/LSE-D protocol on a real video.

Random weights are used (speed does not depend on them), so no checkpoint is needed.

    .venv/bin/python benchmarks/bench_eval.py --threads 1 --video ../shared/media/demo1_video.mp4

Prints one JSON object: seconds per item for each stage (best of --repeat) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.detectors.s3fd import S3FD  # noqa: E402
from eval.detectors.s3fd.nets import S3FDNet  # noqa: E402
from eval.fvd import compute_fvd  # noqa: E402
from eval.hyper_iqa import KONIQ_ARGS, HyperIQAScorer, HyperNet  # noqa: E402
from eval.syncnet import SyncNetEval  # noqa: E402


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video", default=None, help="real face video for the whole-protocol timing (optional)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    out = {"device": args.device, "threads": args.threads, "cpu": platform.processor() or platform.machine()}

    syncnet = SyncNetEval(device=args.device)  # full-size S
    windows = 40
    crops = rng.integers(0, 256, (windows + 5, 224, 224, 3), dtype=np.uint8)
    audio = (rng.normal(size=(windows + 5) * 640) * 3000).astype(np.int16)
    seconds = best_of(args.repeat, lambda: syncnet.embed(crops, audio))
    out["syncnet_full_s_per_window"] = seconds / windows

    s3fd = S3FD(device=args.device, net=S3FDNet(device=args.device).to(args.device).eval())
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    out["s3fd_1080p_scale025_s_per_frame"] = best_of(
        args.repeat, lambda: s3fd.detect_faces(frame, conf_th=0.9, scales=[0.25])
    )

    scorer = HyperIQAScorer(model=HyperNet(**KONIQ_ARGS), device=args.device)
    frames = rng.integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    out["hyperiqa_s_per_clip_3_frames"] = best_of(args.repeat, lambda: scorer.score_frames(frames))

    feats = rng.normal(size=(2, 500, 400)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["fvd_frechet_500x400_s"] = best_of(args.repeat, lambda: compute_fvd(feats[0], feats[1]))

    if args.video:
        from eval.syncnet.video_eval import SyncEvaluator

        evaluator = SyncEvaluator.from_config(detector="mediapipe", device=args.device, load_weights=False)
        from latentsync.utils.media import VideoReader

        num_frames = len(VideoReader(args.video, target_fps=25))
        seconds = best_of(1, lambda: evaluator(args.video))
        out["sync_protocol_mediapipe_full_s_s_per_frame"] = seconds / num_frames
        out["sync_protocol_video_frames"] = num_frames

    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
