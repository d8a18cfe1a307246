"""The writer thread's blend on 1080p frames: finding the pixels the paste-back changed, and keeping an occluder.

    .venv/bin/python benchmarks/bench_blend.py --video ../shared/media/demo1_video.mp4 --frames 16 --repeats 5

Every frame with an occluder or a fading edit goes through `blend.blend_edit` after the paste-back (the writer
thread, `FrameFinisher`). On real frames, with a face-sized paste-back (a `--box` of pixels changed, as a restored
face changes them) and a feathered occluder over its lower half, this times:

- `changed_box`: OpenCV's bounding box of the difference (now) against numpy's per-pixel `any` (before);
- `blend_edit` with the occluder as an `OcclusionPatch` over its box (now) against a full-frame float mask (before),
  and the bytes a chunk of `--frames` such masks holds either way.

Both ways give the same boxes and the same pixels; the bench checks that on every frame it times.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from latentsync.faces.blend import blend_edit, changed_box  # noqa: E402
from latentsync.faces.occlusion import OcclusionPatch  # noqa: E402
from latentsync.utils.media import VideoReader  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media"


def changed_box_numpy(original: np.ndarray, restored: np.ndarray):
    """The definition, as the code before computed it."""
    changed = np.any(original != restored, axis=-1)
    rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
    if len(rows) == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def blend_full_frame(original: np.ndarray, restored: np.ndarray, weight: float, occluder: np.ndarray) -> None:
    """`blend_edit` as the code before ran it: the occluder as a full-frame (H, W) float mask."""
    box = changed_box(original, restored)
    keep = np.full(restored[box].shape[:2], float(weight), dtype=np.float32)
    keep *= 1.0 - np.clip(occluder[box], 0.0, 1.0).astype(np.float32)
    before = original[box].astype(np.float32)
    mixed = before + keep[..., None] * (restored[box].astype(np.float32) - before)
    restored[box] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def best_ms(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def occluder_over(box: tuple[int, int, int, int]) -> OcclusionPatch:
    """A feathered disc over the lower half of `box` (a microphone in front of the mouth)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, (y1 - y0) // 2
    disc = np.zeros((h, w), np.float32)
    cv2.circle(disc, (w // 2, h // 2), min(w, h) // 3, 1.0, -1)
    soft = np.minimum(cv2.GaussianBlur(disc, (0, 0), max(1.0, w / 60)) * 1.5, 1.0)
    return OcclusionPatch((x0, y0 + h, x1, y0 + 2 * h), soft.astype(np.float32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(SHARED / "demo1_video.mp4"))
    parser.add_argument("--frames", type=int, default=16, help="a chunk of this many frames")
    parser.add_argument("--box", type=int, default=400, help="side of the pasted-back face in pixels")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    with VideoReader(args.video) as reader:
        frames = reader.get_frames(range(min(args.frames, len(reader))))
    height, width = frames.shape[1:3]
    x0, y0 = (width - args.box) // 2, (height - args.box) // 2
    box = (x0, y0, x0 + args.box, y0 + args.box)
    patch = occluder_over(box)
    full = patch.full((height, width))
    restored = frames.copy()
    restored[:, y0 : y0 + args.box, x0 : x0 + args.box] = 255 - restored[:, y0 : y0 + args.box, x0 : x0 + args.box]

    timings = {"changed_box_opencv_ms": [], "changed_box_numpy_ms": [], "blend_patch_ms": [], "blend_full_frame_ms": []}
    for original, edited in zip(frames, restored, strict=True):
        assert changed_box(original, edited) == changed_box_numpy(original, edited)
        timings["changed_box_opencv_ms"].append(best_ms(lambda: changed_box(original, edited), args.repeats))  # noqa: B023
        timings["changed_box_numpy_ms"].append(best_ms(lambda: changed_box_numpy(original, edited), args.repeats))  # noqa: B023
        by_patch, by_frame = edited.copy(), edited.copy()
        blend_edit(original, by_patch, 1.0, patch)
        blend_full_frame(original, by_frame, 1.0, full)
        assert np.array_equal(by_patch, by_frame)
        timings["blend_patch_ms"].append(best_ms(lambda: blend_edit(original, edited.copy(), 1.0, patch), args.repeats))  # noqa: B023
        timings["blend_full_frame_ms"].append(  # the full-frame mask is made per frame, as the track made it
            best_ms(lambda: blend_full_frame(original, edited.copy(), 1.0, patch.full((height, width))), args.repeats))  # noqa: B023
    result = {"video": args.video, "frame": f"{width} x {height}", "frames": len(frames), "box": args.box}
    result |= {name: round(float(np.median(values)), 2) for name, values in timings.items()}
    result |= {"chunk_masks_bytes_patch": len(frames) * patch.mask.nbytes,
               "chunk_masks_bytes_full_frame": len(frames) * full.nbytes}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
