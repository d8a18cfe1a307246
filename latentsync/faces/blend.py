"""The last step of an edit: how much of the pasted-back face each output frame keeps, pixel by pixel.

Two rules on top of the official paste-back (`AlignRestore.restore_imgs`):
- **Edges fade.** Where editing starts or stops (a face appears or is lost, a shot cut, a shot whose face does not
  speak), the edit fades in or out over `fade_frames` frames instead of popping: the weight of the edit grows by
  1 / (fade_frames + 1) per frame away from the nearest unedited frame, so a switch always passes through
  `fade_frames` intermediate frames.
- **Occluders stay.** Where something covers the mouth (a hand, a microphone), the original pixels are kept:
  the occluder mask (1 = covered) removes the edit there.
Both act in output order, on the frames as the viewer sees them (ping-pong and loop included).
"""

from __future__ import annotations

import cv2
import numpy as np


def distance_to_unedited(edited: np.ndarray) -> np.ndarray:
    """For each frame, how many frames away the nearest unedited frame is (len + 1 when there is none)."""
    edited = np.asarray(edited, dtype=bool)
    n = len(edited)
    far = n + 1
    before, after = np.full(n, far, dtype=np.int64), np.full(n, far, dtype=np.int64)
    last = None
    for k in range(n):
        last = k if not edited[k] else last
        before[k] = far if last is None else k - last
    last = None
    for k in range(n - 1, -1, -1):
        last = k if not edited[k] else last
        after[k] = far if last is None else last - k
    return np.minimum(before, after)


def edit_weights(edited: np.ndarray, fade_frames: int) -> np.ndarray:
    """Weight of the edit per frame in [0, 1]: 0 where not edited, ramping up over `fade_frames` frames next to an
    unedited frame, 1 elsewhere. Frames outside the given window count as neither (no fade at the video's ends)."""
    steps = max(int(fade_frames), 0) + 1
    weights = np.minimum(distance_to_unedited(edited) / steps, 1.0)
    return np.where(np.asarray(edited, dtype=bool), weights, 0.0)


def changed_box(original: np.ndarray, restored: np.ndarray) -> tuple[slice, slice] | None:
    """Rows and columns that hold every pixel the paste-back changed (None: nothing changed). OpenCV's bounding
    box of the non-zero bytes of the difference, channels side by side: ~20x faster than numpy's per-pixel `any` on
    1080p frames (every frame with an occluder or a fading edit, in the writer thread; benchmarks/bench_blend.py)."""
    difference = cv2.absdiff(original, restored)
    channels = difference.shape[2] if difference.ndim == 3 else 1
    x, y, width, height = cv2.boundingRect(difference.reshape(difference.shape[0], -1))
    if width == 0:
        return None
    return slice(y, y + height), slice(x // channels, (x + width - 1) // channels + 1)


def blend_edit(original: np.ndarray, restored: np.ndarray, weight: float, occluder=None) -> None:
    """Write into `restored` (H, W, 3) uint8: original + weight * (1 - occluder) * (restored - original).

    `occluder`: an `OcclusionPatch` (its `mask` in [0, 1] over its `box`, 0 outside it), 1 where the original
    pixel must stay. A full weight without an occluder leaves `restored` exactly as it is (the official numerics)."""
    if weight >= 1.0 and occluder is None:
        return
    box = changed_box(original, restored)
    if box is None:
        return
    rows, cols = box
    keep = np.full((rows.stop - rows.start, cols.stop - cols.start), float(weight), dtype=np.float32)
    if occluder is not None:
        x0, y0, x1, y1 = occluder.box
        top, left = max(y0, rows.start), max(x0, cols.start)
        bottom, right = min(y1, rows.stop), min(x1, cols.stop)
        if top < bottom and left < right:  # where the occluder's box meets the changed pixels
            covered = np.clip(occluder.mask[top - y0 : bottom - y0, left - x0 : right - x0], 0.0, 1.0)
            keep[top - rows.start : bottom - rows.start, left - cols.start : right - cols.start] *= 1.0 - covered
    before = original[box].astype(np.float32)
    mixed = before + keep[..., None] * (restored[box].astype(np.float32) - before)
    restored[box] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
