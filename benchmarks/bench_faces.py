"""Frames per second of the face stage on a video: decode, detect + align (with and without a detection
stride), the whole face pass as the pipeline runs it (decode + detect + align, streamed), and restore (paste
generated faces back; also in place, as the pipeline does it).

    .venv/bin/python benchmarks/bench_faces.py --video ../shared/media/demo1_video.mp4 --threads 2
    .venv/bin/python benchmarks/bench_faces.py --strides 5 --shots   # + what cuts and occluders add (docs/faces.md)
    .venv/bin/python benchmarks/bench_faces.py --shots --costs_only --repeats 5   # only those costs
    .venv/bin/python benchmarks/bench_faces.py --shots --costs_only --also occlusion.hand_every=12   # + a variant

Decoding is timed on its own; detect + align and restore run on frames already in memory, so their numbers
are the face stage's cost alone. Restore pastes the aligned crops themselves back (the round trip), which
costs the same as pasting generated faces.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentsync.faces.detector import FaceDetector  # noqa: E402
from latentsync.faces.face_pass import ChunkSource, track_faces  # noqa: E402
from latentsync.faces.settings import load_faces_config  # noqa: E402
from latentsync.faces.speaker import find_speaker  # noqa: E402
from latentsync.faces.video import VideoFaceProcessor  # noqa: E402
from latentsync.utils.media import VideoReader, iter_frames  # noqa: E402


def decode(video: str, max_frames: int) -> tuple[np.ndarray, float]:
    """Decoding speed (chunks streamed and dropped, as the pipeline does), then the frames kept for the rest."""
    start, count = time.perf_counter(), 0
    for chunk in iter_frames(video, chunk_size=16):
        count += len(chunk)
        if count >= max_frames:
            break
    fps = count / (time.perf_counter() - start)
    chunks, kept = [], 0
    for chunk in iter_frames(video, chunk_size=16):
        chunks.append(chunk)
        kept += len(chunk)
        if kept >= max_frames:
            break
    return np.concatenate(chunks)[:max_frames], fps


def align(frames: np.ndarray, detector: FaceDetector, resolution: int, detect_every: int, batch: int):
    config = load_faces_config(overrides=[f"tracking.detect_every={detect_every}"])
    processor = VideoFaceProcessor(resolution=resolution, detector=detector, config=config)
    start = time.perf_counter()
    results = list(processor.process(iter(frames), batch_size=batch))
    fps = len(frames) / (time.perf_counter() - start)
    return results, fps, processor


def restore(frames: np.ndarray, results, processor: VideoFaceProcessor, batch: int) -> float:
    faces = torch.stack([r.face.float() / 127.5 - 1 for r in results])
    start = time.perf_counter()
    for k in range(0, len(frames), batch):
        processor.restore(frames[k : k + batch], faces[k : k + batch], results[k : k + batch])
    return len(frames) / (time.perf_counter() - start)


def restore_in_place(frames: np.ndarray, results, processor: VideoFaceProcessor, batch: int) -> float:
    """The pipeline's paste-back: into the chunk's own frames, no copies (the copies are made untimed)."""
    faces = torch.stack([r.face.float() / 127.5 - 1 for r in results])
    seconds = 0.0
    for k in range(0, len(frames), batch):
        target = frames[k : k + batch].copy()
        start = time.perf_counter()
        processor.restore(target, faces[k : k + batch], results[k : k + batch], inplace=True)
        seconds += time.perf_counter() - start
    return len(frames) / seconds


def face_pass(video: str, frames: int, resolution: int, detector: FaceDetector) -> float:
    """Decode + detect + align straight from the file, as the pipeline's face pass does."""
    with VideoReader(video) as reader:
        count = min(frames, len(reader))
        start = time.perf_counter()
        track_faces(reader, count, resolution, detector=detector, progress=False)
        return count / (time.perf_counter() - start)


def cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of its finished children (ffmpeg decoders)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def real_footage_costs(video: str, frames: int, resolution: int, repeats: int = 3, also: tuple[str, ...] = ()) -> dict:
    """Seconds of the inference face pass (`ChunkSource`: decode + detect + align, no networks) without and with
    what issue 26 added: cuts found on its own frames, and occluders (auto). Interleaved, best of `repeats`.
    `also`: faces config overrides (`occlusion.hand_every=12`), each one more "cuts+occlusion" variant with it.

    Also the CPU seconds of each (this process's threads and its ffmpeg children, best of `repeats`), a second
    view on a shared machine; under heavy load they grow too (worker threads spin while waiting for a core).
    And, steadier when the load changes during the run, the median over the repeats of each repeat's own share
    (variant / plain of the same round, run seconds apart): `paired_share_*`, `paired_cpu_share_*`; every
    round's own shares in `round_shares_*`. The order of the variants turns by one from round to round."""
    with VideoReader(video, target_fps=25) as reader:
        count = min(frames, len(reader))
    variants = {"plain": (["shots.detect=false"], "off"), "cuts": ([], "off"), "cuts+occlusion": ([], "auto")}
    variants |= {f"cuts+occlusion[{override}]": ([override], "auto") for override in also}
    best = {name: float("inf") for name in variants}
    cpu = {name: float("inf") for name in variants}
    rounds = []  # per repeat: name -> (seconds, CPU seconds)
    names = list(variants)
    for repeat in range(repeats):
        rounds.append({})
        first = repeat % len(names)  # each round starts with another variant: no variant always runs first or last
        for name in names[first:] + names[:first]:
            overrides, occlusion = variants[name]
            with FaceDetector(backend="mediapipe", config=load_faces_config(overrides=overrides)) as detector:
                source = ChunkSource(video, np.arange(count), 16, resolution, 25, detector=detector, progress=False,
                                     occlusion=occlusion)
                start, start_cpu = time.perf_counter(), cpu_seconds()
                for _chunk in source:
                    pass
                rounds[-1][name] = (time.perf_counter() - start, cpu_seconds() - start_cpu)
                best[name] = min(best[name], rounds[-1][name][0])
                cpu[name] = min(cpu[name], rounds[-1][name][1])
    plain, plain_cpu = best["plain"], cpu["plain"]
    return ({f"face_pass_s_{k}": round(v, 2) for k, v in best.items()}
            | {f"added_share_{k}": round(v / plain - 1, 3) for k, v in best.items() if k != "plain"}
            | {f"face_pass_cpu_s_{k}": round(v, 2) for k, v in cpu.items()}
            | {f"added_cpu_share_{k}": round(v / plain_cpu - 1, 3) for k, v in cpu.items() if k != "plain"}
            | {f"paired_share_{k}": _paired_share(rounds, k, 0) for k in variants if k != "plain"}
            | {f"paired_cpu_share_{k}": _paired_share(rounds, k, 1) for k in variants if k != "plain"}
            | {f"round_shares_{k}": _round_shares(rounds, k) for k in variants if k != "plain"})


def _round_shares(rounds: list[dict], name: str) -> list[tuple[float, float]]:
    """Each round's own (wall, CPU) share of `name` against plain: the spread behind the medians."""
    return [tuple(round(r[name][c] / r["plain"][c] - 1, 3) for c in (0, 1)) for r in rounds]


def _paired_share(rounds: list[dict], name: str, column: int) -> float:
    """Median over the repeats of (variant / plain - 1), each from one round."""
    return round(float(np.median([r[name][column] / r["plain"][column] - 1 for r in rounds])), 3)


def cuts_in_speaker_pass(video: str, frames: int, detector: FaceDetector) -> tuple[float, float]:
    """The speaker pre-pass without and with cut detection on its own frames (frames per second each)."""
    with VideoReader(video) as reader:
        count, fps = min(frames, len(reader)), reader.fps
    rates = []
    for detect in (False, True):
        start = time.perf_counter()
        find_speaker(video, detector, fps, count, detect_shots=detect)
        rates.append(count / (time.perf_counter() - start))
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", default=str(Path(__file__).resolve().parents[2] / "shared/media/demo1_video.mp4"))
    parser.add_argument("--frames", type=int, default=250, help="frames to use (from the start)")
    parser.add_argument("--resolution", type=int, default=256, choices=[256, 512])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--batch", type=int, default=16, help="frames per warp / restore batch")
    parser.add_argument("--strides", default="5,1", help="detection strides to time (1 = detector on every frame)")
    parser.add_argument("--costs_only", action="store_true", help="with --shots: only the face pass costs (skip "
                        "decode, align, restore and the speaker pass)")
    parser.add_argument("--repeats", type=int, default=3, help="with --shots: interleaved runs of each variant (best)")
    parser.add_argument("--also", action="append", default=[], metavar="KEY=VALUE", help="with --shots: one more "
                        "cuts+occlusion variant with this faces config override (repeatable), e.g. "
                        "occlusion.hand_every=12")
    parser.add_argument("--shots", action="store_true", help="also time what real-footage handling adds to the face "
                        "pass (cuts found on its frames, occluders) and the speaker pass with and without cut "
                        "detection, as shares of the face pass")
    args = parser.parse_args()
    if not Path(args.video).is_file():
        sys.exit(f"video not found: {args.video} (pass --video)")
    torch.set_num_threads(args.threads)
    if args.shots and args.costs_only:
        report = {"video": args.video, "frames": args.frames, "load_before": os.getloadavg()}
        report.update(real_footage_costs(args.video, args.frames, args.resolution, args.repeats, tuple(args.also)))
        print(json.dumps(report | {"load_after": os.getloadavg()}, indent=2))
        return

    frames, decode_fps = decode(args.video, args.frames)
    report = {"video": args.video, "frames": len(frames), "frame_hw": list(frames.shape[1:3]),
              "resolution": args.resolution, "torch_threads": args.threads, "cpus": os.cpu_count(),
              "decode_fps": round(decode_fps, 1)}
    with FaceDetector(backend="mediapipe") as detector:
        align(frames[:8], detector, args.resolution, 1, args.batch)  # warm-up: graph start, first allocations
        for stride in (int(s) for s in args.strides.split(",")):
            results, fps, processor = align(frames, detector, args.resolution, stride, args.batch)
            report[f"detect_align_fps_stride{stride}"] = round(fps, 1)
            report[f"stats_stride{stride}"] = processor.stats.as_dict()
        report["restore_fps"] = round(restore(frames, results, processor, args.batch), 1)
        report["restore_in_place_fps"] = round(restore_in_place(frames, results, processor, args.batch), 1)
        report["face_pass_fps"] = round(face_pass(args.video, args.frames, args.resolution, detector), 1)
        if args.shots:
            share = report["face_pass_fps"]
            report["load_before_costs"] = os.getloadavg()
            report.update(real_footage_costs(args.video, args.frames, args.resolution, args.repeats, tuple(args.also)))
            report["load_after_costs"] = os.getloadavg()
            plain, with_cuts = cuts_in_speaker_pass(args.video, args.frames, detector)
            report["speaker_pass_fps"], report["speaker_pass_with_cuts_fps"] = round(plain, 1), round(with_cuts, 1)
            report["cuts_in_speaker_pass_share_of_face_pass"] = round(share / with_cuts - share / plain, 3)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
