"""What the face pass decided, drawn onto the frames: the `--debug_video` companion and the app's preview.

Per frame: the edited face's box with its track id, the 3 alignment points, the outline of the regenerated mouth
region (the official mask carried back into the frame), the occluder mask (tinted red: those pixels are kept),
a banner on the first frames of every shot, and a label on frames that pass through untouched or fade.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

GREEN, YELLOW, RED, CYAN, WHITE = (60, 220, 60), (250, 220, 40), (235, 50, 50), (40, 200, 250), (255, 255, 255)
SHOT_BANNER_FRAMES = 12  # how long "shot N" stays on screen after a cut


@dataclass(frozen=True)
class FrameFacts:
    """What one output frame shows. `matrix` maps the frame into the aligned crop (None: no face)."""

    output_index: int
    source_index: int
    shot: int  # 1-based shot number
    frames_into_shot: int
    weight: float  # share of the edit this frame keeps (0: passed through)
    box: np.ndarray | None = None  # (x1, y1, x2, y2)
    track_id: int | None = None
    points3: np.ndarray | None = None  # (3, 2)
    matrix: np.ndarray | None = None  # (2, 3) frame -> crop
    occluder: np.ndarray | None = None  # (H, W) in [0, 1]


@lru_cache(maxsize=4)
def mouth_outline(keep_mask_bytes: bytes, size: int, crop_w: int, crop_h: int) -> tuple[np.ndarray, ...]:
    """Outlines of the regenerated region (keep = 0) of a (size, size) mask, in crop pixels (crop_w x crop_h)."""
    keep = np.frombuffer(keep_mask_bytes, dtype=np.uint8).reshape(size, size)
    contours, _ = cv2.findContours((keep < 128).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    scale = np.array([crop_w / size, crop_h / size], dtype=np.float64)
    return tuple(c.reshape(-1, 2).astype(np.float64) * scale for c in contours)


def crop_points_to_frame(points: np.ndarray, frame_to_crop: np.ndarray) -> np.ndarray:
    """Crop-pixel points carried back into the frame through the inverse of the alignment matrix."""
    back = cv2.invertAffineTransform(np.asarray(frame_to_crop, dtype=np.float64).reshape(2, 3))
    return points @ back[:, :2].T + back[:, 2]


def _label(frame: np.ndarray, text: str, origin: tuple[int, int], colour, scale: float) -> None:
    thickness = max(1, int(round(scale * 2)))
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_overlay(frame: np.ndarray, facts: FrameFacts, keep_mask: np.ndarray, crop_size: tuple[int, int]) -> np.ndarray:
    """A copy of `frame` (H, W, 3 RGB uint8) with the decisions drawn on it. `keep_mask`: the official (R, R) mask,
    1/255 = keep; `crop_size`: the aligned crop's (w, h) the mask is stretched to before it goes back."""
    out = frame.copy()
    height, width = out.shape[:2]
    scale = max(0.4, min(width, height) / 900)
    if facts.occluder is not None:
        tint = np.clip(facts.occluder, 0, 1)[..., None] * 0.55
        out[:] = np.clip(out * (1 - tint) + np.array(RED) * tint, 0, 255).astype(np.uint8)
    if facts.matrix is not None:
        mask = (np.asarray(keep_mask, dtype=np.float32) * (255 if keep_mask.max() <= 1 else 1)).astype(np.uint8)
        for outline in mouth_outline(mask.tobytes(), mask.shape[0], *crop_size):
            pts = crop_points_to_frame(outline, facts.matrix)
            cv2.polylines(out, [np.round(pts).astype(np.int32)], True, YELLOW, max(1, int(scale * 2)), cv2.LINE_AA)
    if facts.box is not None and np.isfinite(facts.box).all():
        x1, y1, x2, y2 = (int(round(v)) for v in facts.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), GREEN, max(1, int(scale * 2)))
        _label(out, f"track {facts.track_id}", (x1, max(12, y1 - 6)), GREEN, scale * 0.8)
    if facts.points3 is not None and np.isfinite(facts.points3).all():
        for x, y in facts.points3:
            cv2.circle(out, (int(round(x)), int(round(y))), max(2, int(scale * 4)), CYAN, -1, cv2.LINE_AA)
    line = int(30 * scale)
    _label(out, f"frame {facts.output_index} (source {facts.source_index})", (8, line), WHITE, scale * 0.8)
    if facts.frames_into_shot < SHOT_BANNER_FRAMES:
        _label(out, f"shot {facts.shot}" + (" - cut" if facts.shot > 1 else ""), (8, 2 * line), YELLOW, scale)
    if facts.weight <= 0:
        _label(out, "passed through (not edited)", (8, height - line // 2), RED, scale)
    elif facts.weight < 1:
        _label(out, f"fading: edit weight {facts.weight:.2f}", (8, height - line // 2), YELLOW, scale)
    return out
