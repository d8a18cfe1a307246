"""Where an occluder mask lives and how it is blended: its patch (a box and the mask inside it), the blend that
keeps the original pixels under it, the frame region the generated mouth can change, and the regions around a
face that the cues analyse."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Regions this many analysis widths wide or more are analysed in whole pixel blocks (`analysis_grid`).
WHOLE_BLOCKS_FROM = 4


@dataclass
class OcclusionPatch:
    """The non-zero part of an occluder mask: `mask` (h, w) float32 covers frame[y0:y1, x0:x1]."""

    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), exclusive end, inside the frame
    mask: np.ndarray

    def full(self, frame_hw: tuple[int, int]) -> np.ndarray:
        """The whole-frame (H, W) float32 mask."""
        out = np.zeros(frame_hw, dtype=np.float32)
        x0, y0, x1, y1 = self.box
        out[y0:y1, x0:x1] = self.mask
        return out


def keep_occluders(original: np.ndarray, restored: np.ndarray, mask) -> np.ndarray:
    """out = original * m + restored * (1 - m), per pixel: the original wherever something covers the face.

    `original`, `restored`: (H, W, 3) uint8 frames (or (N, H, W, 3) with an (N, H, W) mask); `mask`: a
    full-frame float mask, an `OcclusionPatch` (only its box is blended), or None (returns `restored`).
    Pixels where m == 1 are exactly the original, where m == 0 exactly the restored frame.
    """
    if mask is None:
        return restored
    if isinstance(mask, OcclusionPatch):
        out = np.array(restored, copy=True)
        x0, y0, x1, y1 = mask.box
        out[y0:y1, x0:x1] = keep_occluders(original[y0:y1, x0:x1], restored[y0:y1, x0:x1], mask.mask)
        return out
    m = np.asarray(mask, dtype=np.float32)[..., None]
    blended = original.astype(np.float32) * m + restored.astype(np.float32) * (1.0 - m)
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def edited_region(frame_hw: tuple[int, int], affine_matrix, face_size: tuple[int, int],
                  fixed_mask_u8: np.ndarray) -> np.ndarray:
    """(H, W) bool: the frame pixels the generated mouth can change (the fixed mask's regenerated part, 0 in the
    mask) warped back into the frame with the face's image -> crop matrix (`AlignedFrame.affine_matrix`).

    `face_size` is the crop's (w, h) (`AlignRestore.face_size`); `fixed_mask_u8` the (R, R) mask (1 = keep),
    e.g. `latentsync.pipelines.conditioning.fixed_mask_rgb_u8(R, fixed_mask)[..., 0]`. For measuring and debug overlays.
    """
    matrix = np.asarray(affine_matrix, dtype=np.float64).reshape(2, 3)
    edit = (fixed_mask_u8 < 128).astype(np.uint8) * 255
    edit = cv2.resize(edit, face_size, interpolation=cv2.INTER_NEAREST)
    height, width = frame_hw
    back = cv2.warpAffine(edit, matrix, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return back >= 128


def region_around(box, widen: float, top: float, bottom: float, frame_hw) -> tuple[int, int, int, int] | None:
    """Integer (x0, y0, x1, y1) from a landmark box: widened by widen x W, from top x H to bottom x H below."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    height, width = frame_hw
    rx0, ry0 = max(0, int(np.floor(x1 - widen * w))), max(0, int(np.floor(y1 + top * h)))
    rx1, ry1 = min(width, int(np.ceil(x2 + widen * w))), min(height, int(np.ceil(y2 + bottom * h)))
    if rx1 - rx0 < 4 or ry1 - ry0 < 4:
        return None
    return rx0, ry0, rx1, ry1


def analysis_grid(region: tuple[int, int, int, int], analysis_width: int):
    """(region, (h, w)): the region and the size it is analysed at, `analysis_width` wide. A region k >=
    `WHOLE_BLOCKS_FROM` times that wide (k its width over the analysis width, rounded) is trimmed by under k pixels
    per axis so that k x k blocks tile it: the area resize then averages whole blocks, OpenCV's fast path, 3-4x
    faster (a 600 px wide face at 1080p: 0.37 against 1.29 ms a frame), at an analysis width within 12 % of the
    setting."""
    x0, y0, x1, y1 = region
    k = round((x1 - x0) / analysis_width)
    if k < WHOLE_BLOCKS_FROM:
        return region, (max(4, round((y1 - y0) * analysis_width / (x1 - x0))), analysis_width)
    x1, y1 = x1 - (x1 - x0) % k, y1 - (y1 - y0) % k
    return (x0, y0, x1, y1), ((y1 - y0) // k, (x1 - x0) // k)


def disk(radius: float) -> np.ndarray:
    """An elliptic structuring element about `radius` pixels in radius (an odd size, at least 1)."""
    size = max(1, int(round(2 * radius)) | 1)
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
