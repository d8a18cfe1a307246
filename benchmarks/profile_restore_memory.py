"""RSS while pasting faces back many times into one 1080p frame (the probe that found decord's read-ahead).

    python benchmarks/profile_restore_memory.py --calls 200
    python -m memray run --native -o restore.bin benchmarks/profile_restore_memory.py --calls 150

It opens the video as the pipeline does, aligns the first chunk, then calls `AlignRestore._restore_one`
`--calls` times on the first frame and 20 times `restore_imgs` on the chunk, printing RSS along the way.
Before the sequential frame reader, RSS rose from 0.8 GB to several GB here (decord decoding the rest of the
video in the background); now it stays flat.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from latentsync.faces.face_pass import track_faces  # noqa: E402
from latentsync.utils.media import VideoReader  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", default=str(REPO_ROOT.parent / "shared" / "media" / "demo1_video.mp4"))
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with VideoReader(args.video, target_fps=25) as reader:
        track = track_faces(reader, 16, 256, progress=False)
        frames = reader.get_frames(range(16))
        print(f"after the face pass of one chunk: {rss_mib():.0f} MiB, frames {frames.shape}")
        restorer = track.processor.restorer
        w, h = restorer.face_size
        faces = torch.rand(16, 3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
        matrices = torch.from_numpy(track.matrices[:16])
        start = time.perf_counter()
        for i in range(args.calls):
            restorer._restore_one(frames[0].copy(), faces[0], matrices[0])
            if i % 25 == 0:
                print(f"call {i}: {rss_mib():.0f} MiB", flush=True)
        print(f"_restore_one: {args.calls / (time.perf_counter() - start):.1f} fps, {rss_mib():.0f} MiB")
        start = time.perf_counter()
        for _ in range(20):
            restorer.restore_imgs(frames, faces, matrices)
        print(f"restore_imgs: {20 * 16 / (time.perf_counter() - start):.1f} fps, {rss_mib():.0f} MiB, "
              f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
