"""The fixed mouth-region mask, generated from a compact geometric description (no png in the repo).

The official pipeline reads `latentsync/utils/mask.png` (256x256, 1 = keep, 0 = regenerate) and resizes it
with LANCZOS4. The png is two side bands plus a rounded bowl over mouth and chin; `configs/faces.yaml`
(`fixed_mask`) stores its rows as spans, and this module rebuilds the exact same pixels.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from latentsync.config import CONFIG_DIR, load_config

FACES_CONFIG = CONFIG_DIR / "faces.yaml"


def draw_base_mask(fixed_mask) -> np.ndarray:
    """The 256x256 mask described by a `fixed_mask` config section, as single-channel uint8 {0, 255}."""
    if len(fixed_mask.bowl.left) != len(fixed_mask.bowl.right):
        raise ValueError("fixed_mask.bowl.left and .right must have the same length")
    mask = np.full((fixed_mask.size, fixed_mask.size), 255, dtype=np.uint8)
    row0, row1 = fixed_mask.bands.rows
    for x0, x1 in fixed_mask.bands.spans:
        mask[row0:row1, x0:x1] = 0
    for offset, (x0, x1) in enumerate(zip(fixed_mask.bowl.left, fixed_mask.bowl.right, strict=True)):
        mask[fixed_mask.bowl.row_start + offset, x0:x1] = 0
    mask.setflags(write=False)
    return mask


@lru_cache(maxsize=1)
def base_mask_u8() -> np.ndarray:
    """The official 256x256 mask (configs/faces.yaml `fixed_mask`) as a single-channel uint8 image {0, 255}."""
    return draw_base_mask(load_config(FACES_CONFIG).fixed_mask)


def fixed_mask_rgb_u8(resolution: int, fixed_mask=None) -> np.ndarray:
    """(R, R, 3) uint8 mask as the official loader holds it just before `/ 255`: LANCZOS4-resized from 256.

    The three channels of the png are identical, so one channel is resized and repeated. `fixed_mask`: a
    faces config's `fixed_mask` section for another mask (default: the packaged one).
    """
    if resolution <= 0:
        raise ValueError(f"mask resolution must be positive, got {resolution}")
    base = base_mask_u8() if fixed_mask is None else draw_base_mask(fixed_mask)
    resized = cv2.resize(base, (resolution, resolution), interpolation=cv2.INTER_LANCZOS4)
    return np.repeat(resized[:, :, None], 3, axis=2)
